package llmrouter_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// droppingServer is a scripted server that records the requests it gets: the
// first call sends three events and then fails with UNAVAILABLE, as a dropped
// connection does; a later call (an attach, or a subscription from an offset)
// replays from one offset before the one asked for, a duplicate the real
// server never sends but the client must drop, and completes the generation.
// With routeFailed set, the first call ends as a failed route does instead.
// reconnect_test.go runs the same paths against the real server.
type droppingServer struct {
	llmrouterv1.UnimplementedRouterServiceServer

	mu       sync.Mutex
	requests []*llmrouterv1.GenerateRequest
	adds     []*llmrouterv1.AddSubscription
	// busy is how many attaches are refused with FAILED_PRECONDITION, as the
	// server does while it still holds the lost call.
	busy int
	// routeFailed ends the first call with UNAVAILABLE and a RouteFailure
	// detail, as when every attempt of a route failed, not as a lost call.
	routeFailed bool
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
	refuse := request.GetAttach() != nil && s.busy > 0
	if refuse {
		s.busy--
	}
	routeFailed := s.routeFailed
	s.mu.Unlock()
	if refuse {
		return status.Error(codes.FailedPrecondition, "stream 'gen-1' is attached to another caller")
	}
	attach := request.GetAttach()
	err = replay(attach != nil, attach.GetFromOffset(), func(event *llmrouterv1.StreamEvent) error {
		return stream.Send(&llmrouterv1.GenerateResponse{Event: event})
	})
	if routeFailed && status.Code(err) == codes.Unavailable {
		failure := &llmrouterv1.RouteFailure{Attempts: []*llmrouterv1.AttemptFailed{{Attempt: 1, ErrorReason: "BACKEND_CONNECT"}}}
		st, detailErr := status.New(codes.Unavailable, "1 attempt failed").WithDetails(failure)
		if detailErr != nil {
			return detailErr
		}
		return st.Err()
	}
	return err
}

func (s *droppingServer) Subscribe(stream grpc.BidiStreamingServer[llmrouterv1.SubscribeRequest, llmrouterv1.SubscribeResponse]) error {
	request, err := stream.Recv()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.adds = append(s.adds, request.GetAdd())
	resuming := len(s.adds) > 1
	s.mu.Unlock()
	err = replay(resuming, request.GetAdd().GetFromOffset(), func(event *llmrouterv1.StreamEvent) error {
		return stream.Send(&llmrouterv1.SubscribeResponse{Item: &llmrouterv1.SubscribeResponse_Event{Event: event}})
	})
	if err != nil {
		return err
	}
	ended := &llmrouterv1.SubscriptionEnded{StreamId: "gen-1", NextOffset: uint64(len(script))}
	return stream.Send(&llmrouterv1.SubscribeResponse{Item: &llmrouterv1.SubscribeResponse_Ended{Ended: ended}})
}

// replay sends the script's first three events and fails with UNAVAILABLE, or,
// when resuming, everything from one offset before from.
func replay(resuming bool, from uint64, send func(*llmrouterv1.StreamEvent) error) error {
	first, end := 0, 3
	if resuming {
		first, end = int(from)-1, len(script)
	}
	for offset := first; offset < end; offset++ {
		if err := send(&llmrouterv1.StreamEvent{StreamId: "gen-1", Offset: uint64(offset), Kind: script[offset].GetKind()}); err != nil {
			return err
		}
	}
	if end < len(script) {
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

func TestSubscriptionReconnectsFromTheNextOffsetWithoutDuplicates(t *testing.T) {
	fake := &droppingServer{}
	policy := llmrouter.ReconnectPolicy{MaxAttempts: 2, Backoff: time.Millisecond}
	client, err := llmrouter.New(serveFake(t, fake), llmrouter.WithReconnect(policy))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subscription, err := client.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer subscription.Close()
	if err := subscription.Add(&llmrouterv1.AddSubscription{StreamId: "gen-1"}); err != nil {
		t.Fatal(err)
	}

	var offsets []uint64
	for item, err := range subscription.Responses() {
		if err != nil {
			t.Fatal(err)
		}
		if item.GetEnded() != nil {
			break
		}
		offsets = append(offsets, item.GetEvent().GetOffset())
	}

	if !slices.Equal(offsets, []uint64{0, 1, 2, 3, 4}) {
		t.Fatalf("offsets = %v, want 0..4 once each", offsets)
	}
	if len(fake.adds) != 2 || fake.adds[1].GetStreamId() != "gen-1" || fake.adds[1].GetFromOffset() != 3 {
		t.Fatalf("adds = %v, want the second from offset 3", fake.adds)
	}
}

func TestReattachRetriesWhileTheServerStillHoldsTheLostCall(t *testing.T) {
	fake := &droppingServer{busy: 2}
	policy := llmrouter.ReconnectPolicy{MaxAttempts: 3, Backoff: time.Millisecond}
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

	text, _, err := generation.Wait()

	if err != nil || text != "Once upon a time" || len(fake.requests) != 4 {
		t.Fatalf("Wait() = %q, %v after %d calls", text, err, len(fake.requests))
	}
}

func TestReattachGivesUpAfterMaxAttempts(t *testing.T) {
	fake := &droppingServer{busy: 5}
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

	_, _, err = generation.Wait()

	if status.Code(err) != codes.FailedPrecondition || len(fake.requests) != 3 {
		t.Fatalf("Wait() error = %v after %d calls", err, len(fake.requests))
	}
}

func TestAFailedRouteIsReturnedWithoutReattaching(t *testing.T) {
	fake := &droppingServer{routeFailed: true}
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

	_, _, err = generation.Wait()

	var failure *llmrouter.Error
	if !errors.As(err, &failure) || failure.Code != codes.Unavailable || len(failure.Attempts()) != 1 {
		t.Fatalf("Wait() error = %v, want UNAVAILABLE with one attempt", err)
	}
	if len(fake.requests) != 1 {
		t.Fatalf("the server saw %d calls, want 1 (no re-attach)", len(fake.requests))
	}
}
