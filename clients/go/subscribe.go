package llmrouter

import (
	"context"
	"errors"
	"io"
	"iter"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

type subscribeStream = grpc.BidiStreamingClient[llmrouterv1.SubscribeRequest, llmrouterv1.SubscribeResponse]

// Subscription follows generations by stream id on one Subscribe call:
// replay from an offset, then live events. Read with Recv or Responses from
// one goroutine; Add, Remove and Grant may be called from any goroutine.
type Subscription struct {
	ctx    context.Context
	cancel context.CancelFunc
	rpc    llmrouterv1.RouterServiceClient
	policy ReconnectPolicy

	mu     sync.Mutex // guards stream (and sending on it) and active
	stream subscribeStream
	active map[string]*llmrouterv1.AddSubscription

	// The fields below belong to the reading goroutine.
	cursors  map[string]*cursor
	attempts int
}

// Subscribe opens a Subscribe call; add subscriptions to it with Add.
func (c *Client) Subscribe(ctx context.Context) (*Subscription, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{
		ctx: ctx, cancel: cancel, rpc: c.rpc, policy: c.reconnect,
		active: map[string]*llmrouterv1.AddSubscription{}, cursors: map[string]*cursor{},
	}
	if err := s.open(); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// Add follows a generation from add.FromOffset (0 replays it from the start).
func (s *Subscription) Add(add *llmrouterv1.AddSubscription) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active[add.GetStreamId()] = proto.CloneOf(add)
	return s.sendLocked(&llmrouterv1.SubscribeRequest{Action: &llmrouterv1.SubscribeRequest_Add{Add: add}})
}

// Remove stops following a generation.
func (s *Subscription) Remove(streamID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, streamID)
	remove := &llmrouterv1.RemoveSubscription{StreamId: streamID}
	return s.sendLocked(&llmrouterv1.SubscribeRequest{Action: &llmrouterv1.SubscribeRequest_Remove{Remove: remove}})
}

// Grant allows credits more events on one subscription (CREDIT flow mode).
func (s *Subscription) Grant(streamID string, credits uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	grant := &llmrouterv1.SubscriptionCredits{StreamId: streamID, Credits: credits}
	return s.sendLocked(&llmrouterv1.SubscribeRequest{Action: &llmrouterv1.SubscribeRequest_Grant{Grant: grant}})
}

// Recv returns the next item: an event of a followed generation, or a
// subscription being added or ending. It returns io.EOF when the call ends
// normally and an *Error when it fails.
func (s *Subscription) Recv() (*llmrouterv1.SubscribeResponse, error) {
	for {
		response, err := s.current().Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.cancel()
				return nil, io.EOF
			}
			if err = s.reconnect(wrapError(err)); err != nil {
				s.cancel()
				return nil, err
			}
			continue
		}
		if s.accept(response) {
			s.attempts = 0
			return response, nil
		}
	}
}

// Responses iterates over the items; it stops when the call ends or after
// yielding an error.
func (s *Subscription) Responses() iter.Seq2[*llmrouterv1.SubscribeResponse, error] {
	return func(yield func(*llmrouterv1.SubscribeResponse, error) bool) {
		for {
			response, err := s.Recv()
			if errors.Is(err, io.EOF) || !yield(response, err) || err != nil {
				return
			}
		}
	}
}

// Close ends the call and every subscription on it.
func (s *Subscription) Close() {
	s.cancel()
}

func (s *Subscription) open() error {
	stream, err := s.rpc.Subscribe(s.ctx)
	if err != nil {
		return wrapError(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream = stream
	for id, add := range s.active {
		resume := proto.CloneOf(add)
		if position, ok := s.cursors[id]; ok && position.seen {
			resume.FromOffset = position.next
		}
		if err := s.sendLocked(&llmrouterv1.SubscribeRequest{Action: &llmrouterv1.SubscribeRequest_Add{Add: resume}}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Subscription) current() subscribeStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream
}

func (s *Subscription) sendLocked(request *llmrouterv1.SubscribeRequest) error {
	err := s.stream.Send(request)
	if errors.Is(err, io.EOF) {
		return ErrEnded
	}
	return wrapError(err)
}

// reconnect opens a new call with every active subscription added again from
// its next offset; it returns nil once reopened, or the error to report.
func (s *Subscription) reconnect(cause error) error {
	for s.policy.wait(s.ctx, cause, s.attempts+1) {
		s.attempts++
		if cause = s.open(); cause == nil {
			return nil
		}
	}
	return cause
}

// accept drops events replayed after reconnecting and forgets ended subscriptions.
func (s *Subscription) accept(response *llmrouterv1.SubscribeResponse) bool {
	if ended := response.GetEnded(); ended != nil {
		s.mu.Lock()
		delete(s.active, ended.GetStreamId())
		s.mu.Unlock()
		delete(s.cursors, ended.GetStreamId())
		return true
	}
	event := response.GetEvent()
	if event == nil {
		return true
	}
	position, ok := s.cursors[event.GetStreamId()]
	if !ok {
		position = &cursor{}
		s.cursors[event.GetStreamId()] = position
	}
	return position.accept(event)
}
