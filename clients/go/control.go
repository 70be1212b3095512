package llmrouter

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"

	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// Control is an operator channel: it pauses, resumes, cancels and describes
// any generation by stream id, and pushes state changes of watched ones. Its
// methods may be called from any goroutine; each waits for its own reply. A
// command the server refuses (an unknown stream id, pausing a finished
// generation) returns an *Error with the code and the details the server gave
// it (Reason() is the ErrorInfo reason, such as "NOT_FOUND"), and the channel
// stays open. A command whose ctx has ended, or sent on a channel whose ctx
// has, returns an *Error that unwraps to ctx.Err().
type Control struct {
	stream  grpc.BidiStreamingClient[llmrouterv1.ControlRequest, llmrouterv1.ControlResponse]
	ctx     context.Context
	cancel  context.CancelFunc
	ids     atomic.Uint64
	changes chan *llmrouterv1.StreamStatus

	sendMu  sync.Mutex
	mu      sync.Mutex // guards pending and err
	pending map[string]chan *llmrouterv1.ControlResponse
	err     error
}

// Control opens a Control call; it lasts until ctx ends or Close is called.
func (c *Client) Control(ctx context.Context) (*Control, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.rpc.Control(ctx)
	if err != nil {
		cancel()
		return nil, callError(ctx, err)
	}
	control := &Control{
		stream: stream, ctx: ctx, cancel: cancel,
		changes: make(chan *llmrouterv1.StreamStatus, 16),
		pending: map[string]chan *llmrouterv1.ControlResponse{},
	}
	go control.read()
	return control, nil
}

// Pause pauses a running generation and returns its status.
func (c *Control) Pause(ctx context.Context, streamID, reason string) (*llmrouterv1.StreamStatus, error) {
	reply, err := c.do(ctx, &llmrouterv1.ControlRequest{Command: &llmrouterv1.ControlRequest_Pause{Pause: &llmrouterv1.PauseStreamCommand{StreamId: streamID, Reason: reason}}})
	return reply.GetStatus(), err
}

// Resume resumes a paused generation and returns its status.
func (c *Control) Resume(ctx context.Context, streamID string) (*llmrouterv1.StreamStatus, error) {
	reply, err := c.do(ctx, &llmrouterv1.ControlRequest{Command: &llmrouterv1.ControlRequest_Resume{Resume: &llmrouterv1.ResumeStreamCommand{StreamId: streamID}}})
	return reply.GetStatus(), err
}

// Cancel cancels a generation and returns its status once it has ended (state
// CANCELLED). The generation ends as when its caller cancels it: its log ends
// with one completed event (finish reason CANCELLED, CancelledBy OPERATOR,
// CancelReason reason, the usage so far) that its Generate caller and every
// subscriber get at once, even with no credits left. The caller's call then
// ends normally (Recv returns io.EOF, Wait no error); subscriptions end
// normally too.
func (c *Control) Cancel(ctx context.Context, streamID, reason string) (*llmrouterv1.StreamStatus, error) {
	reply, err := c.do(ctx, &llmrouterv1.ControlRequest{Command: &llmrouterv1.ControlRequest_Cancel{Cancel: &llmrouterv1.CancelStreamCommand{StreamId: streamID, Reason: reason}}})
	return reply.GetStatus(), err
}

// Status returns the status of a generation.
func (c *Control) Status(ctx context.Context, streamID string) (*llmrouterv1.StreamStatus, error) {
	reply, err := c.do(ctx, &llmrouterv1.ControlRequest{Command: &llmrouterv1.ControlRequest_Status{Status: &llmrouterv1.StreamStatusCommand{StreamId: streamID}}})
	return reply.GetStatus(), err
}

// List returns the generations in the given states (all when none is given).
func (c *Control) List(ctx context.Context, states ...llmrouterv1.StreamState) ([]*llmrouterv1.StreamStatus, error) {
	reply, err := c.do(ctx, &llmrouterv1.ControlRequest{Command: &llmrouterv1.ControlRequest_List{List: &llmrouterv1.ListStreamsCommand{States: states}}})
	return reply.GetList().GetStreams(), err
}

// Watch pushes every later state change of the named generations (of all,
// when none is named) to Changes, and returns their current statuses. An
// unknown stream id fails it with NOT_FOUND and watches nothing.
func (c *Control) Watch(ctx context.Context, streamIDs ...string) ([]*llmrouterv1.StreamStatus, error) {
	reply, err := c.do(ctx, &llmrouterv1.ControlRequest{Command: &llmrouterv1.ControlRequest_Watch{Watch: &llmrouterv1.WatchStreamsCommand{StreamIds: streamIDs}}})
	return reply.GetList().GetStreams(), err
}

// Unwatch stops pushing state changes of the named generations (of all, when
// none is named).
func (c *Control) Unwatch(ctx context.Context, streamIDs ...string) error {
	_, err := c.do(ctx, &llmrouterv1.ControlRequest{Command: &llmrouterv1.ControlRequest_Unwatch{Unwatch: &llmrouterv1.UnwatchStreamsCommand{StreamIds: streamIDs}}})
	return err
}

// Changes delivers the pushed state changes of watched generations; it is
// closed when the channel ends. Read it while watching: replies wait behind
// unread changes.
func (c *Control) Changes() <-chan *llmrouterv1.StreamStatus {
	return c.changes
}

// Err is why the channel ended, or nil while it is open.
func (c *Control) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the channel.
func (c *Control) Close() {
	c.cancel()
}

// do sends one command and waits for its reply; a command failed in-band
// returns an *Error with the command's code and details.
func (c *Control) do(ctx context.Context, request *llmrouterv1.ControlRequest) (*llmrouterv1.ControlResponse, error) {
	if ctx.Err() != nil {
		return nil, contextError(ctx)
	}
	request.RequestId = strconv.FormatUint(c.ids.Add(1), 10)
	reply := make(chan *llmrouterv1.ControlResponse, 1)
	c.mu.Lock()
	if c.pending == nil {
		c.mu.Unlock()
		return nil, c.Err()
	}
	c.pending[request.RequestId] = reply
	c.mu.Unlock()
	defer c.forget(request.RequestId)
	c.sendMu.Lock()
	err := c.stream.Send(request)
	c.sendMu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, callError(c.ctx, err)
	}
	select {
	case response, ok := <-reply:
		if !ok {
			return nil, c.Err()
		}
		if failure := response.GetError(); failure != nil {
			return nil, commandError(failure)
		}
		return response, nil
	case <-ctx.Done():
		return nil, contextError(ctx)
	}
}

func (c *Control) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, id)
}

// read dispatches replies to their commands and pushed changes to Changes
// until the call ends, then fails every waiting command with the reason.
func (c *Control) read() {
	defer close(c.changes)
	for {
		response, err := c.stream.Recv()
		if err != nil {
			c.end(err)
			return
		}
		if response.GetRequestId() == "" {
			select {
			case c.changes <- response.GetStatus():
			case <-c.ctx.Done():
			}
			continue
		}
		c.mu.Lock()
		reply := c.pending[response.GetRequestId()]
		c.mu.Unlock()
		if reply != nil {
			reply <- response
		}
	}
}

func (c *Control) end(err error) {
	if errors.Is(err, io.EOF) {
		err = ErrEnded
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = callError(c.ctx, err)
	for _, reply := range c.pending {
		close(reply)
	}
	c.pending = nil
	c.cancel()
}
