package llmrouter

import (
	"errors"
	"io"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// ErrEnded is returned when a request is sent on a call that has already
// ended; Recv tells how it ended.
var ErrEnded = errors.New("llmrouter: the call has ended")

// Error is a failed call or command: the gRPC status code and message, and
// the status details the server attached. Get it with errors.As; the code
// alone is also available through status.Code(err).
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
// generation finished, otherwise an *Error with the code and message the
// server gave (NOT_FOUND for an unknown stream id, CANCELLED for a generation
// an operator cancelled, ...).
func EndedError(ended *llmrouterv1.SubscriptionEnded) error {
	failure := ended.GetError()
	if failure.GetCode() == uint32(codes.OK) {
		return nil
	}
	return &Error{Code: codes.Code(failure.GetCode()), Message: failure.GetMessage()}
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
