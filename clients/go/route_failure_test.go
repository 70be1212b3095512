package llmrouter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// downConfig has one route, "down", whose only target is an OpenAI-compatible
// backend on a loopback port nobody listens on: every attempt fails to connect.
const downConfig = `
backends:
  down: {kind: openai, base_url: "http://127.0.0.1:%d/v1", api_key_env: null}
routes:
  down:
    targets: [{backend: down, model: m}]
    max_attempts: 2
    retry: {initial_backoff_seconds: 0.01, max_backoff_seconds: 0.02}
default_route: down
`

// kindOf names the kind of an event as the proto does, e.g. "attempt_failed".
func kindOf(event *llmrouterv1.StreamEvent) string {
	message := event.ProtoReflect()
	return string(message.WhichOneof(message.Descriptor().Oneofs().ByName("kind")).Name())
}

func kindsOf(events []*llmrouterv1.StreamEvent) []string {
	kinds := make([]string, len(events))
	for i, event := range events {
		kinds[i] = kindOf(event)
	}
	return kinds
}

func TestARouteOutOfAttemptsReturnsEveryAttempt(t *testing.T) {
	closed, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	client, err := llmrouter.New(startConfiguredServer(t, fmt.Sprintf(downConfig, closed)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	generation, err := client.Generate(ctx, &llmrouterv1.StartGeneration{Prompt: "hi", Model: "down"})
	if err != nil {
		t.Fatal(err)
	}

	var events []*llmrouterv1.StreamEvent
	var ended error
	for event, err := range generation.Events() {
		if err != nil {
			ended = err
			break
		}
		events = append(events, event)
	}

	if want := []string{"started", "attempt_failed", "fallback_used", "attempt_failed"}; !slices.Equal(kindsOf(events), want) {
		t.Fatalf("events = %v, want %v", kindsOf(events), want)
	}
	var failure *llmrouter.Error
	if !errors.As(ended, &failure) || failure.Code != codes.Unavailable || failure.Reason() != "BACKEND_CONNECT" {
		t.Fatalf("error = %v, want UNAVAILABLE with reason BACKEND_CONNECT", ended)
	}
	if count := failure.Info.GetMetadata()["attempts"]; count != "2" {
		t.Fatalf("ErrorInfo attempts = %q, want 2", count)
	}
	attempts := failure.Attempts()
	if len(attempts) != 2 {
		t.Fatalf("attempts = %v, want 2", attempts)
	}
	for i, attempt := range attempts {
		got := fmt.Sprint(attempt.GetAttempt(), attempt.GetErrorReason(), attempt.GetWillRetry(), attempt.GetBackend(), attempt.GetModel(), attempt.GetTarget(), attempt.GetHttpStatus())
		if want := fmt.Sprint(i+1, "BACKEND_CONNECT", i == 0, "down", "m", 0, 0); got != want {
			t.Fatalf("attempt %d = %s, want %s", i+1, got, want)
		}
	}
	if first, second := events[1].GetAttemptFailed(), events[3].GetAttemptFailed(); first.GetAttempt() != 1 || second.GetAttempt() != 2 {
		t.Fatalf("attempt_failed events = %v, %v", first, second)
	}
	if fallback := events[2].GetFallbackUsed(); fallback.GetFromBackend() != "down" || fallback.GetBackend() != "down" {
		t.Fatalf("fallback_used = %v", fallback)
	}
}

// restartingServer streams "Once", falls back with RESTART, then streams
// "Twice" and completes.
type restartingServer struct {
	llmrouterv1.UnimplementedRouterServiceServer
}

func (restartingServer) Generate(stream grpc.BidiStreamingServer[llmrouterv1.GenerateRequest, llmrouterv1.GenerateResponse]) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	restart := &llmrouterv1.FallbackUsed{Action: llmrouterv1.MidStreamAction_MID_STREAM_ACTION_RESTART, ToTarget: 1}
	script := []*llmrouterv1.StreamEvent{
		{Kind: &llmrouterv1.StreamEvent_Started{Started: &llmrouterv1.Started{}}},
		{Kind: &llmrouterv1.StreamEvent_Chunk{Chunk: &llmrouterv1.Chunk{Text: "Once"}}},
		{Kind: &llmrouterv1.StreamEvent_AttemptFailed{AttemptFailed: &llmrouterv1.AttemptFailed{Attempt: 1, WillRetry: true}}},
		{Kind: &llmrouterv1.StreamEvent_FallbackUsed{FallbackUsed: restart}},
		{Kind: &llmrouterv1.StreamEvent_Chunk{Chunk: &llmrouterv1.Chunk{Text: "Twice"}}},
		{Kind: &llmrouterv1.StreamEvent_Completed{Completed: &llmrouterv1.Completed{FinishReason: llmrouterv1.FinishReason_FINISH_REASON_STOP}}},
	}
	for offset, event := range script {
		event.StreamId, event.Offset = "gen-1", uint64(offset)
		if err := stream.Send(&llmrouterv1.GenerateResponse{Event: event}); err != nil {
			return err
		}
	}
	return nil
}

func TestARestartFallbackDropsTheTextBeforeIt(t *testing.T) {
	client, err := llmrouter.New(serveFake(t, restartingServer{}))
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
	text, _, err := generation.Wait()
	chat := client.NewChat(llmrouter.ChatOptions{})
	reply, chatErr := chat.Ask(ctx, "hi")

	want := []string{"started", "chunk", "attempt_failed", "fallback_used", "chunk", "completed"}
	if !slices.Equal(kindsOf(events), want) {
		t.Fatalf("events = %v, want %v", kindsOf(events), want)
	}
	if err != nil || chatErr != nil || text != "Twice" || reply != "Twice" {
		t.Fatalf("Wait() = %q, %v; Ask() = %q, %v; want Twice", text, err, reply, chatErr)
	}
	if messages := chat.Messages(); len(messages) != 2 || messages[1].GetContent() != "Twice" {
		t.Fatalf("history = %v, want the reply Twice", messages)
	}
}
