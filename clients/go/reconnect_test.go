package llmrouter_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// droppingServer stands in for a server that implements `attach`: the first
// call sends three events and then fails with UNAVAILABLE, as a dropped
// connection does; an attach call replays from one offset before the one asked
// for (a duplicate the client must drop) and completes the generation.
type droppingServer struct {
	llmrouterv1.UnimplementedRouterServiceServer

	mu       sync.Mutex
	requests []*llmrouterv1.GenerateRequest
}

var script = []*llmrouterv1.StreamEvent{
	{Kind: &llmrouterv1.StreamEvent_Started{Started: &llmrouterv1.Started{}}},
	{Kind: &llmrouterv1.StreamEvent_Chunk{Chunk: &llmrouterv1.Chunk{Text: "Once"}}},
	{Kind: &llmrouterv1.StreamEvent_Chunk{Chunk: &llmrouterv1.Chunk{Text: " upon"}}},
	{Kind: &llmrouterv1.StreamEvent_Chunk{Chunk: &llmrouterv1.Chunk{Text: " a time"}}},
	{Kind: &llmrouterv1.StreamEvent_Completed{Completed: &llmrouterv1.Completed{FinishReason: llmrouterv1.FinishReason_FINISH_REASON_LENGTH}}},
}

func (s *droppingServer) Generate(stream grpc.BidiStreamingServer[llmrouterv1.GenerateRequest, llmrouterv1.GenerateResponse]) error {
	request, err := stream.Recv()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.requests = append(s.requests, request)
	s.mu.Unlock()
	from, to := 0, 3
	if attach := request.GetAttach(); attach != nil {
		from, to = int(attach.GetFromOffset())-1, len(script)
	}
	for offset := from; offset < to; offset++ {
		event := &llmrouterv1.StreamEvent{StreamId: "gen-1", Offset: uint64(offset), Kind: script[offset].GetKind()}
		if err := stream.Send(&llmrouterv1.GenerateResponse{Event: event}); err != nil {
			return err
		}
	}
	if to < len(script) {
		return status.Error(codes.Unavailable, "connection lost")
	}
	return nil
}

func serveFake(t *testing.T, service llmrouterv1.RouterServiceServer) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	llmrouterv1.RegisterRouterServiceServer(server, service)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}

func TestReconnectReattachesFromTheNextOffsetWithoutDuplicates(t *testing.T) {
	fake := &droppingServer{}
	policy := llmrouter.ReconnectPolicy{MaxAttempts: 2, Backoff: time.Millisecond}
	client, err := llmrouter.New(serveFake(t, fake), llmrouter.WithReconnect(policy))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	generation, err := client.Generate(ctx, &llmrouterv1.StartGeneration{Prompt: "hi"})
	if err != nil {
		t.Fatal(err)
	}

	events := collect(t, generation)
	text, completed, err := generation.Wait()

	for i, event := range events {
		if event.GetOffset() != uint64(i) {
			t.Fatalf("offsets: event %d has offset %d", i, event.GetOffset())
		}
	}
	if len(events) != len(script) || err != nil || text != "Once upon a time" || completed == nil {
		t.Fatalf("got %d events, text %q, completed %v, error %v", len(events), text, completed, err)
	}
	if len(fake.requests) != 2 {
		t.Fatalf("the server saw %d calls, want 2", len(fake.requests))
	}
	if action := fake.requests[0].GetStart().GetOnDisconnect().GetAction(); action != llmrouterv1.DisconnectAction_DISCONNECT_ACTION_DETACH {
		t.Fatalf("start on_disconnect = %v, want DETACH", action)
	}
	if attach := fake.requests[1].GetAttach(); attach.GetStreamId() != "gen-1" || attach.GetFromOffset() != 3 {
		t.Fatalf("attach = %v, want gen-1 from offset 3", attach)
	}
}

func TestWithoutReconnectUnavailableIsReturned(t *testing.T) {
	fake := &droppingServer{}
	client, err := llmrouter.New(serveFake(t, fake))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	generation, err := client.Generate(ctx, &llmrouterv1.StartGeneration{Prompt: "hi"})
	if err != nil {
		t.Fatal(err)
	}

	text, _, err := generation.Wait()

	if status.Code(err) != codes.Unavailable || text != "Once upon" || len(fake.requests) != 1 {
		t.Fatalf("Wait() = %q, %v after %d calls", text, err, len(fake.requests))
	}
	if fake.requests[0].GetStart().GetOnDisconnect() != nil {
		t.Fatal("a client without a reconnect policy asked for DETACH")
	}
}
