package llmrouter

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// ErrEnded is returned when a request is sent on a call that has already
// ended; Recv tells how it ended.
var ErrEnded = errors.New("llmrouter: the call has ended")

// Error is a failed call or command: the gRPC status code and message, and
// the status details the server attached (a command refused in-band carries
// the same details as a failed call). Get it with errors.As; the code alone is
// also available through status.Code(err). A call that ended because its
// context was cancelled or its deadline passed unwraps to context.Canceled or
// context.DeadlineExceeded, so errors.Is works on it.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Message is the status message; it names the field or stream at fault.
	Message string
	// Info is the ErrorInfo detail (domain "llmrouter.v1"), or nil.
	Info *errdetails.ErrorInfo
	// BadRequest lists the invalid request fields, or is nil.
	BadRequest *errdetails.BadRequest
	// RetryInfo says how long to wait before retrying, or is nil.
	RetryInfo *errdetails.RetryInfo
	// RouteFailure lists every failed attempt of a generation that failed on
	// its route, or is nil.
	RouteFailure *llmrouterv1.RouteFailure

	status *status.Status
	cause  error // context.Canceled or context.DeadlineExceeded, when the context ended the call
}

// Error formats the code and the message.
func (e *Error) Error() string {
	return "llmrouter: " + e.Code.String() + ": " + e.Message
}

// GRPCStatus returns the status, so status.FromError and status.Code work on an *Error.
func (e *Error) GRPCStatus() *status.Status {
	if e.status == nil {
		return status.New(e.Code, e.Message)
	}
	return e.status
}

// Unwrap returns context.Canceled or context.DeadlineExceeded when the call
// ended because its context did, and nil otherwise.
func (e *Error) Unwrap() error {
	return e.cause
}

// Reason is the stable ErrorInfo reason, such as "NOT_FOUND"; empty when absent.
func (e *Error) Reason() string {
	return e.Info.GetReason()
}

// Field names the request field at fault, such as "start.model"; empty when unknown.
func (e *Error) Field() string {
	return e.Info.GetMetadata()["field"]
}

// StreamID names the generation the error belongs to; empty when unknown.
func (e *Error) StreamID() string {
	return e.Info.GetMetadata()["stream_id"]
}

// Offset is the offset the next event would have had (every earlier event was
// delivered); ok is false when the server did not say.
func (e *Error) Offset() (offset uint64, ok bool) {
	value, found := e.Info.GetMetadata()["offset"]
	if !found {
		return 0, false
	}
	offset, err := strconv.ParseUint(value, 10, 64)
	return offset, err == nil
}

// RetryDelay is how long the server asks the caller to wait; 0 when it did not say.
func (e *Error) RetryDelay() time.Duration {
	return e.RetryInfo.GetRetryDelay().AsDuration()
}

// Attempts are the route's failed attempts, oldest first; nil without a
// RouteFailure detail.
func (e *Error) Attempts() []*llmrouterv1.AttemptFailed {
	return e.RouteFailure.GetAttempts()
}

// EndedError is why a subscription ended: nil when it was removed or its
// generation finished (a cancelled one included: its completed event says who
// cancelled it), otherwise an *Error with the code, message and details the
// server gave (NOT_FOUND for an unknown stream id, the generation's error when
// it failed, ...).
func EndedError(ended *llmrouterv1.SubscriptionEnded) error {
	failure := ended.GetError()
	if failure.GetCode() == uint32(codes.OK) {
		return nil
	}
	return commandError(failure)
}

// commandError is a command the server refused in-band, or a failed
// subscription, with its details decoded as a failed call's are.
func commandError(failure *llmrouterv1.CommandError) *Error {
	return fromStatus(status.FromProto(&spb.Status{
		Code: int32(failure.GetCode()), Message: failure.GetMessage(), Details: failure.GetDetails(),
	}))
}

// callError is wrapError for a call made with ctx: when ctx has ended and the
// call ended with the matching code, the *Error unwraps to ctx.Err(); a
// DEADLINE_EXCEEDED on a call whose ctx has a deadline unwraps to
// context.DeadlineExceeded (this server sets no deadline of its own).
func callError(ctx context.Context, err error) error {
	err = wrapError(err)
	var failure *Error
	if !errors.As(err, &failure) || failure.cause != nil {
		return err
	}
	cause := ctx.Err()
	if _, hasDeadline := ctx.Deadline(); cause == nil && hasDeadline && failure.Code == codes.DeadlineExceeded {
		// The server ends the call at the deadline it was sent, which can come a
		// moment before ctx's own timer fires: the cause is still ctx's deadline.
		cause = context.DeadlineExceeded
	}
	if cause == nil {
		return err
	}
	if failure.Code != status.FromContextError(cause).Code() {
		return err
	}
	withCause := *failure
	withCause.cause = cause
	return &withCause
}

// contextError is the *Error for a command abandoned because ctx ended.
func contextError(ctx context.Context) *Error {
	cause := ctx.Err()
	failure := fromStatus(status.FromContextError(cause))
	failure.cause = cause
	return failure
}

// wrapError turns a gRPC status error into an *Error; nil, io.EOF and errors
// without a status pass through unchanged.
func wrapError(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	var wrapped *Error
	if errors.As(err, &wrapped) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return fromStatus(st)
}

func fromStatus(st *status.Status) *Error {
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch detail := detail.(type) {
		case *errdetails.ErrorInfo:
			e.Info = detail
		case *errdetails.BadRequest:
			e.BadRequest = detail
		case *errdetails.RetryInfo:
			e.RetryInfo = detail
		case *llmrouterv1.RouteFailure:
			e.RouteFailure = detail
		}
	}
	return e
}
