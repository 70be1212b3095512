// Package llmrouter is a Go client for the llmrouter gRPC service
// (llmrouter.v1.RouterService).
//
// A Client opens a Generation per prompt; its events arrive in offset order
// through Recv or the Events iterator, and Pause, Resume, Cancel and Grant
// steer it from any goroutine. Attach re-attaches to a detached generation,
// Subscribe follows generations started by others, Control steers any
// generation by id, and Chat keeps a conversation's history. With a
// ReconnectPolicy, generations and subscriptions survive a lost connection.
// WithAPIKey sends an API key on every call and WithTLS (LoadTLS reads PEM
// files) makes the connection TLS, mutual TLS with a client certificate.
// Failed calls return an *Error carrying the gRPC code and the details the
// server attached: google.rpc ErrorInfo, BadRequest and RetryInfo, and the
// failed attempts (RouteFailure) of a generation whose route ran out of them.
//
// The generated messages and stubs live in the gen/llmrouter/v1 package
// (imported as llmrouterv1); this package takes and returns those messages.
package llmrouter
