package llmrouter_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

const prompt = "Write a story about a lighthouse keeper."

// setup connects a client to the test server and bounds the test with a deadline.
func setup(t *testing.T, options ...llmrouter.Option) (context.Context, *llmrouter.Client) {
	t.Helper()
	client, err := llmrouter.New(address, options...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(func() {
		cancel()
		_ = client.Close()
	})
	return ctx, client
}

// greedy is a start request for maxTokens tokens at temperature 0.
func greedy(text string, maxTokens int32) *llmrouterv1.StartGeneration {
	return &llmrouterv1.StartGeneration{
		Prompt:   text,
		Sampling: &llmrouterv1.SamplingParams{MaxTokens: proto.Int32(maxTokens), Temperature: proto.Float32(0)},
	}
}

func collect(t *testing.T, generation *llmrouter.Generation) []*llmrouterv1.StreamEvent {
	t.Helper()
	var events []*llmrouterv1.StreamEvent
	for event, err := range generation.Events() {
		if err != nil {
			t.Fatalf("after %d events: %v", len(events), err)
		}
		events = append(events, event)
	}
	return events
}

func TestGenerateStreamsChunksInOffsetOrder(t *testing.T) {
	ctx, client := setup(t)
	generation, err := client.Generate(ctx, greedy(prompt, 8))
	if err != nil {
		t.Fatal(err)
	}

	events := collect(t, generation)

	if events[0].GetStarted() == nil {
		t.Fatalf("first event is %v, want started", events[0])
	}
	var chunks strings.Builder
	for i, event := range events {
		if event.GetOffset() != uint64(i) || event.GetStreamId() != generation.StreamID() {
			t.Fatalf("event %d has offset %d and stream %q", i, event.GetOffset(), event.GetStreamId())
		}
		chunks.WriteString(event.GetChunk().GetText())
	}
	completed := events[len(events)-1].GetCompleted()
	if completed.GetFinishReason() != llmrouterv1.FinishReason_FINISH_REASON_LENGTH || completed.GetUsage().GetCompletionTokens() != 8 {
		t.Fatalf("completed = %v, want LENGTH after 8 tokens", completed)
	}
	text, last, err := generation.Wait()
	if err != nil || text == "" || text != chunks.String() || !proto.Equal(last, completed) {
		t.Fatalf("Wait() = %q, %v, %v; chunks give %q", text, last, err, chunks.String())
	}
}

func TestCancelEndsWithCancelled(t *testing.T) {
	ctx, client := setup(t)
	generation, err := client.Generate(ctx, greedy("Write a long story about the sea.", 256))
	if err != nil {
		t.Fatal(err)
	}

	for event, err := range generation.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if event.GetChunk() != nil {
			break
		}
	}
	if err := generation.Cancel("enough"); err != nil {
		t.Fatal(err)
	}
	_, completed, err := generation.Wait()

	if err != nil {
		t.Fatalf("Wait() = %v, %v; want CANCELLED", completed, err)
	}
	assertCancelled(t, completed, llmrouterv1.CancelledBy_CANCELLED_BY_CALLER, "enough")
	if completed.GetUsage().GetCompletionTokens() >= 256 {
		t.Fatalf("cancelled after %d tokens", completed.GetUsage().GetCompletionTokens())
	}
}

func TestUnknownModelIsNotFoundNamingTheField(t *testing.T) {
	ctx, client := setup(t)
	start := greedy("hi", 4)
	start.Model = "gpt-17"
	generation, err := client.Generate(ctx, start)
	if err != nil {
		t.Fatal(err)
	}

	_, _, err = generation.Wait()

	var failure *llmrouter.Error
	if !errors.As(err, &failure) {
		t.Fatalf("Wait() error = %v, want *llmrouter.Error", err)
	}
	if failure.Code != codes.NotFound || status.Code(err) != codes.NotFound {
		t.Fatalf("code = %v, want NotFound", failure.Code)
	}
	if failure.Field() != "start.model" || failure.Reason() != "NOT_FOUND" || failure.Info.GetDomain() != "llmrouter.v1" {
		t.Fatalf("ErrorInfo = %v", failure.Info)
	}
	if !strings.Contains(failure.Message, "unknown model 'gpt-17'") {
		t.Fatalf("message = %q", failure.Message)
	}
}

func TestZeroMaxTokensIsInvalidArgumentWithAFieldViolation(t *testing.T) {
	ctx, client := setup(t)
	generation, err := client.Generate(ctx, greedy("hi", 0))
	if err != nil {
		t.Fatal(err)
	}

	_, _, err = generation.Wait()

	var failure *llmrouter.Error
	if !errors.As(err, &failure) || failure.Code != codes.InvalidArgument {
		t.Fatalf("Wait() error = %v, want INVALID_ARGUMENT", err)
	}
	violations := failure.BadRequest.GetFieldViolations()
	if len(violations) != 1 || violations[0].GetField() != "start.sampling.max_tokens" {
		t.Fatalf("BadRequest = %v", failure.BadRequest)
	}
	if failure.Field() != "start.sampling.max_tokens" || failure.RetryDelay() != 0 {
		t.Fatalf("ErrorInfo = %v, RetryInfo = %v", failure.Info, failure.RetryInfo)
	}
}

func TestListModelsHasTheDefaultRoute(t *testing.T) {
	ctx, client := setup(t)

	routes, err := client.ListModels(ctx)

	if err != nil || len(routes) != 1 {
		t.Fatalf("ListModels() = %v, %v", routes, err)
	}
	if routes[0].GetName() != "smollm2-135m-instruct" || !routes[0].GetIsDefault() {
		t.Fatalf("route = %v", routes[0])
	}
}
