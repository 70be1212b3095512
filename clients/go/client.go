package llmrouter

import (
	"context"
	"crypto/tls"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// Client calls one llmrouter server. It is safe for concurrent use.
type Client struct {
	conn      *grpc.ClientConn
	rpc       llmrouterv1.RouterServiceClient
	reconnect ReconnectPolicy
}

// Option configures a Client.
type Option func(*settings)

type settings struct {
	dialOptions []grpc.DialOption
	conn        grpc.ClientConnInterface
	reconnect   ReconnectPolicy
	apiKey      *string     // WithAPIKey's key
	tls         *tls.Config // WithTLS's configuration
}

// WithDialOptions adds gRPC dial options. The connection is plaintext unless
// WithTLS or one of them sets transport credentials.
func WithDialOptions(options ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOptions = append(s.dialOptions, options...) }
}

// WithConn makes the client use an existing connection, which Close leaves
// open. WithAPIKey and WithTLS do not apply to it: New fails when they are given.
func WithConn(conn grpc.ClientConnInterface) Option {
	return func(s *settings) { s.conn = conn }
}

// WithReconnect makes generations and subscriptions re-attach after a lost
// connection; see ReconnectPolicy for what the server must support.
func WithReconnect(policy ReconnectPolicy) Option {
	return func(s *settings) { s.reconnect = policy }
}

// New creates a client for the server at target, for example "localhost:50051".
// No connection is made until the first call.
func New(target string, options ...Option) (*Client, error) {
	var s settings
	for _, option := range options {
		option(&s)
	}
	client := &Client{reconnect: s.reconnect.withDefaults()}
	conn := s.conn
	if conn != nil && (s.apiKey != nil || s.tls != nil) {
		return nil, errors.New("llmrouter: WithAPIKey and WithTLS apply to a connection New opens, not to WithConn's")
	}
	if conn == nil {
		dial, err := s.credentials()
		if err != nil {
			return nil, err
		}
		cc, err := grpc.NewClient(target, append(dial, s.dialOptions...)...)
		if err != nil {
			return nil, err
		}
		client.conn, conn = cc, cc
	}
	client.rpc = llmrouterv1.NewRouterServiceClient(conn)
	return client, nil
}

// credentials are the dial options for WithTLS (else plaintext) and WithAPIKey.
func (s *settings) credentials() ([]grpc.DialOption, error) {
	transport := insecure.NewCredentials()
	if s.tls != nil {
		transport = credentials.NewTLS(s.tls)
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	if s.apiKey != nil {
		key, err := newBearerKey(*s.apiKey)
		if err != nil {
			return nil, err
		}
		dial = append(dial, grpc.WithPerRPCCredentials(key))
	}
	return dial, nil
}

// Close closes the connection the client created; calls in flight end with CANCELED.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// RPC is the generated stub, for calls this package does not wrap.
func (c *Client) RPC() llmrouterv1.RouterServiceClient {
	return c.rpc
}

// ListModels returns the configured routes, the default one marked.
func (c *Client) ListModels(ctx context.Context) ([]*llmrouterv1.Route, error) {
	reply, err := c.rpc.ListModels(ctx, &llmrouterv1.ListModelsRequest{})
	return reply.GetRoutes(), callError(ctx, err)
}

// ListStreams returns one page of generations, newest first.
func (c *Client) ListStreams(ctx context.Context, request *llmrouterv1.ListStreamsRequest) (*llmrouterv1.ListStreamsResponse, error) {
	reply, err := c.rpc.ListStreams(ctx, request)
	return reply, callError(ctx, err)
}

// GetStream returns the status of one generation and up to recentEvents of its latest events.
func (c *Client) GetStream(ctx context.Context, streamID string, recentEvents uint32) (*llmrouterv1.GetStreamResponse, error) {
	reply, err := c.rpc.GetStream(ctx, &llmrouterv1.GetStreamRequest{StreamId: streamID, RecentEvents: recentEvents})
	return reply, callError(ctx, err)
}

// GetStats returns the server's counters and latency percentiles; model
// selects one model or route, empty means all.
func (c *Client) GetStats(ctx context.Context, model string) (*llmrouterv1.GetStatsResponse, error) {
	reply, err := c.rpc.GetStats(ctx, &llmrouterv1.GetStatsRequest{Model: model})
	return reply, callError(ctx, err)
}
