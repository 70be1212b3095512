package llmrouter

import (
	"context"
	"errors"
	"io"
	"iter"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

type generateStream = grpc.BidiStreamingClient[llmrouterv1.GenerateRequest, llmrouterv1.GenerateResponse]

// Generation is one generation on one Generate call. Read its events with
// Recv or Events from one goroutine; Pause, Resume, Cancel and Grant may be
// called from any goroutine. Close releases the call early.
//
// A cancelled generation is not an error: whoever cancels it (this caller, an
// operator, a detach TTL, a server shutdown), its last event is a completed
// event with finish reason CANCELLED, and the call ends normally (see Cancel).
// A call that ends because its context was cancelled or its deadline passed
// returns an *Error that unwraps to ctx.Err(), so errors.Is(err,
// context.Canceled) and errors.Is(err, context.DeadlineExceeded) work.
type Generation struct {
	ctx    context.Context
	cancel context.CancelFunc
	rpc    llmrouterv1.RouterServiceClient
	policy ReconnectPolicy

	mu       sync.Mutex // guards stream (and sending on it), streamID and credits
	stream   generateStream
	streamID string
	credits  credits

	// The fields below belong to the reading goroutine.
	cursor      cursor
	attempts    int
	attaching   bool // the call is a re-attach that has not delivered anything yet
	text        strings.Builder
	completed   *llmrouterv1.Completed
	rejected    []*Error
	onCompleted func(text string, completed *llmrouterv1.Completed)
}

// Generate starts a generation; the call lasts until ctx ends, the
// generation completes, or Close is called.
func (c *Client) Generate(ctx context.Context, start *llmrouterv1.StartGeneration) (*Generation, error) {
	if c.reconnect.enabled() && start.GetOnDisconnect() == nil {
		start = proto.CloneOf(start)
		start.OnDisconnect = c.reconnect.disconnectPolicy()
	}
	first := &llmrouterv1.GenerateRequest{Action: &llmrouterv1.GenerateRequest_Start{Start: start}}
	return c.openGeneration(ctx, first, start.GetStreamId(), start.GetFlow(), cursor{})
}

// Attach re-attaches to a generation started with on_disconnect DETACH whose
// caller has gone (or to a finished one the server still retains) and streams
// its events from attach.FromOffset. Text and Wait cover only those events.
// An unknown stream id ends the call with NOT_FOUND, a generation another
// caller holds with FAILED_PRECONDITION.
func (c *Client) Attach(ctx context.Context, attach *llmrouterv1.AttachGeneration) (*Generation, error) {
	first := &llmrouterv1.GenerateRequest{Action: &llmrouterv1.GenerateRequest_Attach{Attach: attach}}
	from := cursor{next: attach.GetFromOffset(), seen: true}
	return c.openGeneration(ctx, first, attach.GetStreamId(), attach.GetFlow(), from)
}

func (c *Client) openGeneration(
	ctx context.Context, first *llmrouterv1.GenerateRequest, streamID string, flow *llmrouterv1.FlowControl, from cursor,
) (*Generation, error) {
	ctx, cancel := context.WithCancel(ctx)
	g := &Generation{
		ctx: ctx, cancel: cancel, rpc: c.rpc, policy: c.reconnect,
		streamID: streamID, credits: newCredits(flow), cursor: from,
	}
	if err := g.open(first); err != nil {
		cancel()
		return nil, err
	}
	return g, nil
}

// StreamID is the generation's id, known once the first event has arrived
// (or at once when the start request chose it).
func (g *Generation) StreamID() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.streamID
}

// Recv returns the next event, in offset order. After the last event it
// returns io.EOF; a failed generation returns an *Error.
func (g *Generation) Recv() (*llmrouterv1.StreamEvent, error) {
	for {
		response, err := g.current().Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				g.cancel()
				return nil, io.EOF
			}
			if err = g.reattach(callError(g.ctx, err)); err != nil {
				g.cancel()
				return nil, err
			}
			continue
		}
		if rejected := response.GetRejected(); rejected != nil {
			g.rejected = append(g.rejected, commandError(rejected))
			continue
		}
		g.attaching = false
		event := response.GetEvent()
		if g.cursor.accept(event) {
			g.attempts = 0
			g.record(event)
			return event, nil
		}
	}
}

// Rejected returns the steering requests the server could not apply (a resume
// when not paused, credits in AUTO flow), oldest first; the call went on after
// each. Like Recv, it belongs to the reading goroutine.
func (g *Generation) Rejected() []*Error {
	return slices.Clone(g.rejected)
}

// Events iterates over the remaining events; it stops after the last event or
// after yielding an error.
func (g *Generation) Events() iter.Seq2[*llmrouterv1.StreamEvent, error] {
	return func(yield func(*llmrouterv1.StreamEvent, error) bool) {
		for {
			event, err := g.Recv()
			if errors.Is(err, io.EOF) || !yield(event, err) || err != nil {
				return
			}
		}
	}
}

// Wait reads the remaining events and returns the whole text and the
// completed event. For a cancelled generation the error is nil and the
// completed event says who cancelled it and why: GetFinishReason() is
// CANCELLED, GetCancelledBy() CALLER, OPERATOR, DETACH_TIMEOUT or SHUTDOWN,
// and GetCancelReason() the reason the canceller gave.
func (g *Generation) Wait() (string, *llmrouterv1.Completed, error) {
	for _, err := range g.Events() {
		if err != nil {
			return g.text.String(), nil, err
		}
	}
	return g.text.String(), g.completed, nil
}

// Pause asks the server to stop producing until Resume; a paused event marks
// the place in the stream.
func (g *Generation) Pause(reason string) error {
	return g.send(&llmrouterv1.GenerateRequest{Action: &llmrouterv1.GenerateRequest_Pause{Pause: &llmrouterv1.PauseGeneration{Reason: reason}}})
}

// Resume continues a paused generation at the next offset, after a resumed event.
func (g *Generation) Resume() error {
	return g.send(&llmrouterv1.GenerateRequest{Action: &llmrouterv1.GenerateRequest_Resume{Resume: &llmrouterv1.ResumeGeneration{}}})
}

// Cancel cancels the generation; reason comes back as the completed event's
// CancelReason. The call then ends normally (Recv returns io.EOF after it, Wait
// no error) with one completed event: finish reason CANCELLED, CancelledBy
// CALLER, this reason and the usage so far. That event needs no credit: in
// CREDIT flow with none left, Recv skips straight to it (its offset jumps; the
// skipped events stay on the server for replay through Subscribe or Attach).
// Every subscriber of the generation gets the same event at once. An
// operator's Control.Cancel, a detach TTL and a server shutdown end the call
// the same way, with CancelledBy saying who. Cancel returns ErrEnded once the
// call has ended.
func (g *Generation) Cancel(reason string) error {
	return g.send(&llmrouterv1.GenerateRequest{Action: &llmrouterv1.GenerateRequest_Cancel{Cancel: &llmrouterv1.CancelGeneration{Reason: reason}}})
}

// Grant allows the server to send credits more events (CREDIT flow mode).
func (g *Generation) Grant(credits uint32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.sendLocked(&llmrouterv1.GenerateRequest{Action: &llmrouterv1.GenerateRequest_Grant{Grant: &llmrouterv1.GrantCredits{Credits: credits}}})
	if err == nil {
		g.credits.grant(credits)
	}
	return err
}

// Close ends the call; the server then cancels the generation, unless it was
// started with on_disconnect DETACH.
func (g *Generation) Close() {
	g.cancel()
}

func (g *Generation) open(first *llmrouterv1.GenerateRequest) error {
	stream, err := g.rpc.Generate(g.ctx)
	if err != nil {
		return callError(g.ctx, err)
	}
	// io.EOF means the server already ended the call; Recv reports why.
	if err := stream.Send(first); err != nil && !errors.Is(err, io.EOF) {
		return callError(g.ctx, err)
	}
	g.mu.Lock()
	g.stream = stream
	g.mu.Unlock()
	return nil
}

func (g *Generation) current() generateStream {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stream
}

func (g *Generation) send(request *llmrouterv1.GenerateRequest) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sendLocked(request)
}

func (g *Generation) sendLocked(request *llmrouterv1.GenerateRequest) error {
	err := g.stream.Send(request)
	if errors.Is(err, io.EOF) {
		return ErrEnded
	}
	return callError(g.ctx, err)
}

// reattach opens a new call attached to the generation after cause ended the
// previous one; it returns nil once attached, or the error to report.
func (g *Generation) reattach(cause error) error {
	id := g.StreamID()
	for id != "" && g.policy.wait(g.ctx, cause, g.attaching, g.attempts+1) {
		g.attempts++
		g.mu.Lock()
		flow := g.credits.flow()
		g.mu.Unlock()
		attach := &llmrouterv1.AttachGeneration{StreamId: id, FromOffset: g.cursor.next, Flow: flow}
		cause = g.open(&llmrouterv1.GenerateRequest{Action: &llmrouterv1.GenerateRequest_Attach{Attach: attach}})
		if cause == nil {
			g.attaching = true
			return nil
		}
	}
	return cause
}

// record keeps the stream id, the credits left, the text so far and the
// completed event.
func (g *Generation) record(event *llmrouterv1.StreamEvent) {
	g.mu.Lock()
	g.streamID = event.GetStreamId()
	g.credits.spend()
	g.mu.Unlock()
	switch {
	case event.GetChunk() != nil:
		g.text.WriteString(event.GetChunk().GetText())
	case event.GetFallbackUsed().GetAction() == llmrouterv1.MidStreamAction_MID_STREAM_ACTION_RESTART:
		g.text.Reset()
	case event.GetCompleted() != nil:
		g.completed = event.GetCompleted()
		if g.onCompleted != nil {
			g.onCompleted(g.text.String(), g.completed)
		}
	}
}
