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
// one goroutine; Add, Remove, Grant and CloseSend may be called from any
// goroutine.
//
// Each subscription delivers an `added` item, its events in offset order and
// an `ended` item (see EndedError). A subscription that fails, for example on
// an unknown stream id, ends alone; the call and the others go on. After
// CloseSend the call ends (Recv returns io.EOF) once every subscription has
// ended.
//
// A subscription whose generation is cancelled (by its caller, an operator, a
// detach TTL or a server shutdown) gets the generation's last event, completed
// with finish reason CANCELLED, at once, even in CREDIT flow with no credits
// left (its offsets jump), and then an `ended` item without an error. A call
// that ends because its context was cancelled or its deadline passed returns
// an *Error that unwraps to ctx.Err().
type Subscription struct {
	ctx    context.Context
	cancel context.CancelFunc
	rpc    llmrouterv1.RouterServiceClient
	policy ReconnectPolicy

	mu       sync.Mutex // guards the fields up to positions
	stream   subscribeStream
	active   map[string]*following
	sendDone bool

	// The fields below belong to the reading goroutine.
	positions map[string]*cursor
	attempts  int
}

// following is one subscription as it would be added again after a reconnect.
type following struct {
	add     *llmrouterv1.AddSubscription
	credits credits
	readded bool // added again on a new call; its next `added` item is not delivered
}

// Subscribe opens a Subscribe call; add subscriptions to it with Add.
func (c *Client) Subscribe(ctx context.Context) (*Subscription, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{
		ctx: ctx, cancel: cancel, rpc: c.rpc, policy: c.reconnect,
		active: map[string]*following{}, positions: map[string]*cursor{},
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
	s.active[add.GetStreamId()] = &following{add: proto.CloneOf(add), credits: newCredits(add.GetFlow())}
	return s.sendLocked(&llmrouterv1.SubscribeRequest{Action: &llmrouterv1.SubscribeRequest_Add{Add: add}})
}

// Remove stops following a generation; its `ended` item follows.
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
	err := s.sendLocked(&llmrouterv1.SubscribeRequest{Action: &llmrouterv1.SubscribeRequest_Grant{Grant: grant}})
	if following := s.active[streamID]; err == nil && following != nil {
		following.credits.grant(credits)
	}
	return err
}

// CloseSend says no more requests follow: the call then ends once every
// subscription on it has ended.
func (s *Subscription) CloseSend() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendDone = true
	return callError(s.ctx, s.stream.CloseSend())
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
			if err = s.reconnect(callError(s.ctx, err)); err != nil {
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

// open starts a call and adds every active subscription again from the
// offset after the last event delivered, with the credits it had left.
func (s *Subscription) open() error {
	stream, err := s.rpc.Subscribe(s.ctx)
	if err != nil {
		return callError(s.ctx, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream = stream
	for id, following := range s.active {
		again := proto.CloneOf(following.add)
		if position, ok := s.positions[id]; ok && position.seen {
			again.FromOffset = position.next
		}
		if following.credits.enabled {
			again.Flow = following.credits.flow()
		}
		following.readded = true
		if err := s.sendLocked(&llmrouterv1.SubscribeRequest{Action: &llmrouterv1.SubscribeRequest_Add{Add: again}}); err != nil {
			return err
		}
	}
	if s.sendDone {
		return callError(s.ctx, stream.CloseSend())
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
	return callError(s.ctx, err)
}

// reconnect opens a new call with every active subscription added again from
// its next offset; it returns nil once reopened, or the error to report.
func (s *Subscription) reconnect(cause error) error {
	for s.policy.wait(s.ctx, cause, false, s.attempts+1) {
		s.attempts++
		if cause = s.open(); cause == nil {
			return nil
		}
	}
	return cause
}

// accept drops what a reconnect repeats (events already delivered, the
// `added` item of a subscription added again), counts credits and forgets
// ended subscriptions.
func (s *Subscription) accept(response *llmrouterv1.SubscribeResponse) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case response.GetAdded() != nil:
		following := s.active[response.GetAdded().GetStreamId()]
		if following != nil && following.readded {
			following.readded = false
			return false
		}
	case response.GetEnded() != nil:
		delete(s.active, response.GetEnded().GetStreamId())
		delete(s.positions, response.GetEnded().GetStreamId())
	case response.GetEvent() != nil:
		event := response.GetEvent()
		position, ok := s.positions[event.GetStreamId()]
		if !ok {
			position = &cursor{}
			s.positions[event.GetStreamId()] = position
		}
		if !position.accept(event) {
			return false
		}
		if following := s.active[event.GetStreamId()]; following != nil {
			following.credits.spend()
		}
	}
	return true
}
