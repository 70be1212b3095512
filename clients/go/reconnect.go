package llmrouter

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// ReconnectPolicy re-attaches a Generation or a Subscription after its call
// was lost: ended with UNAVAILABLE, which is how gRPC reports a dropped
// connection, a restarted proxy or a server going away.
//
// With a policy set, every generation starts with on_disconnect DETACH (unless
// the request sets its own), so the server keeps it running for DetachTTL
// after its call is lost. A Generation then re-attaches with a Generate
// `attach` request naming its stream id, the offset after the last event it
// delivered and, in CREDIT flow, the credits it had left; a Subscription adds
// each of its subscriptions again from its next offset. Events the caller has
// already seen are dropped and a repeated `added` item is not delivered, so it
// sees every event once and in order.
//
// The server may not have noticed yet that the lost call is gone when the
// attach arrives; it then refuses it with FAILED_PRECONDITION, and that is
// retried like UNAVAILABLE. Steering sent while the call is down (Pause,
// Resume, Cancel, Grant) fails with ErrEnded or UNAVAILABLE and is not replayed.
// An UNAVAILABLE that carries a RouteFailure is not a lost call but the
// generation's end (every attempt its route allowed failed): it is returned at once.
type ReconnectPolicy struct {
	// MaxAttempts is how many re-attach attempts follow one another without an
	// event in between; 0 disables reconnecting.
	MaxAttempts int
	// Backoff is the wait before the first attempt, doubled after each one;
	// 100 ms when zero.
	Backoff time.Duration
	// MaxBackoff caps the wait; 2 s when zero.
	MaxBackoff time.Duration
	// DetachTTL is how long the server keeps a generation whose caller is
	// gone; 30 s when zero.
	DetachTTL time.Duration
}

func (p ReconnectPolicy) withDefaults() ReconnectPolicy {
	if p.Backoff <= 0 {
		p.Backoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 2 * time.Second
	}
	if p.DetachTTL <= 0 {
		p.DetachTTL = 30 * time.Second
	}
	return p
}

// enabled reports whether generations should be started detachable.
func (p ReconnectPolicy) enabled() bool {
	return p.MaxAttempts > 0
}

// disconnectPolicy is the on_disconnect a reconnecting client starts with.
func (p ReconnectPolicy) disconnectPolicy() *llmrouterv1.DisconnectPolicy {
	return &llmrouterv1.DisconnectPolicy{
		Action:    llmrouterv1.DisconnectAction_DISCONNECT_ACTION_DETACH,
		DetachTtl: durationpb.New(p.DetachTTL),
	}
}

// wait sleeps before attempt number attempt (counting from 1) when err allows
// another attempt; it returns false when the caller must give up instead.
// attaching says err ended a re-attach before it delivered anything.
func (p ReconnectPolicy) wait(ctx context.Context, err error, attaching bool, attempt int) bool {
	code := status.Code(err)
	retry := code == codes.Unavailable || (attaching && code == codes.FailedPrecondition)
	var failure *Error
	if errors.As(err, &failure) && failure.RouteFailure != nil {
		retry = false
	}
	if attempt > p.MaxAttempts || !retry {
		return false
	}
	delay := p.Backoff << (attempt - 1)
	if delay > p.MaxBackoff || delay <= 0 {
		delay = p.MaxBackoff
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// cursor tracks the next offset of one generation, so events replayed after
// re-attaching are delivered once.
type cursor struct {
	next uint64
	seen bool
}

// accept reports whether event is new, and moves past it when it is.
func (c *cursor) accept(event *llmrouterv1.StreamEvent) bool {
	if c.seen && event.GetOffset() < c.next {
		return false
	}
	c.next, c.seen = event.GetOffset()+1, true
	return true
}

// credits counts what a consumer in CREDIT flow may still receive, so a
// re-attach or a resubscription asks for exactly the credits that were left.
type credits struct {
	enabled bool
	left    int64
}

func newCredits(flow *llmrouterv1.FlowControl) credits {
	if flow.GetMode() != llmrouterv1.FlowMode_FLOW_MODE_CREDIT {
		return credits{}
	}
	return credits{enabled: true, left: int64(flow.GetInitialCredits())}
}

func (c *credits) grant(n uint32) {
	c.left += int64(n)
}

func (c *credits) spend() {
	if c.enabled && c.left > 0 {
		c.left--
	}
}

// flow is the FlowControl a new call continues with; nil in AUTO flow.
func (c *credits) flow() *llmrouterv1.FlowControl {
	if !c.enabled {
		return nil
	}
	return &llmrouterv1.FlowControl{Mode: llmrouterv1.FlowMode_FLOW_MODE_CREDIT, InitialCredits: uint32(c.left)}
}
