package llmrouter_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// credit makes start a CREDIT-flow generation with initial credits.
func credit(start *llmrouterv1.StartGeneration, initial uint32) *llmrouterv1.StartGeneration {
	start.Flow = &llmrouterv1.FlowControl{Mode: llmrouterv1.FlowMode_FLOW_MODE_CREDIT, InitialCredits: initial}
	return start
}

// referenceText is the whole text of an uninterrupted generation of start.
func referenceText(ctx context.Context, t *testing.T, client *llmrouter.Client, start *llmrouterv1.StartGeneration) string {
	t.Helper()
	generation, err := client.Generate(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	text, _, err := generation.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func recv(t *testing.T, generation *llmrouter.Generation) *llmrouterv1.StreamEvent {
	t.Helper()
	event, err := generation.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return event
}

// assertConsecutive checks that the events have the offsets from, from+1, ...
func assertConsecutive(t *testing.T, events []*llmrouterv1.StreamEvent, from uint64) {
	t.Helper()
	for i, event := range events {
		if event.GetOffset() != from+uint64(i) {
			t.Fatalf("event %d has offset %d, want %d", i, event.GetOffset(), from+uint64(i))
		}
	}
}

func indexOf(events []*llmrouterv1.StreamEvent, match func(*llmrouterv1.StreamEvent) bool) int {
	for i, event := range events {
		if match(event) {
			return i
		}
	}
	return -1
}

func TestPauseAndResumeAreMarkedInTheStreamAndLoseNothing(t *testing.T) {
	ctx, client := setup(t)
	want := referenceText(ctx, t, client, greedy(prompt, 32))
	// Two credits (started, then the first chunk) hold the generation a few
	// events ahead, so the pause surely arrives while it runs.
	generation, err := client.Generate(ctx, credit(greedy(prompt, 32), 2))
	if err != nil {
		t.Fatal(err)
	}
	events := []*llmrouterv1.StreamEvent{recv(t, generation), recv(t, generation)}

	if err := generation.Pause("stepped away"); err != nil {
		t.Fatal(err)
	}
	if err := generation.Grant(1000); err != nil {
		t.Fatal(err)
	}
	for {
		event := recv(t, generation)
		events = append(events, event)
		if event.GetPaused() != nil {
			break
		}
	}
	if err := generation.Resume(); err != nil {
		t.Fatal(err)
	}
	events = append(events, collect(t, generation)...)

	paused := indexOf(events, func(e *llmrouterv1.StreamEvent) bool { return e.GetPaused() != nil })
	resumed := indexOf(events, func(e *llmrouterv1.StreamEvent) bool { return e.GetResumed() != nil })
	if paused < 2 || resumed < paused || events[paused].GetPaused().GetReason() != "stepped away" {
		t.Fatalf("paused at %d (%v), resumed at %d", paused, events[paused], resumed)
	}
	assertConsecutive(t, events, 0)
	text, completed, err := generation.Wait()
	if err != nil || text != want || completed.GetUsage().GetCompletionTokens() != 32 {
		t.Fatalf("text %q after %v, %v; want %q", text, completed, err, want)
	}
}

func TestCreditFlowNeverSendsPastTheGrant(t *testing.T) {
	ctx, client := setup(t)
	generation, err := client.Generate(ctx, credit(greedy(prompt, 16), 2))
	if err != nil {
		t.Fatal(err)
	}
	events := []*llmrouterv1.StreamEvent{recv(t, generation), recv(t, generation)}
	// The server has produced more than it may send...
	for {
		reply, err := client.GetStream(ctx, generation.StreamID(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if reply.GetStatus().GetNextOffset() > 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ... and sends none of it until the next grant.
	next := make(chan *llmrouterv1.StreamEvent, 1)
	go func() {
		event, _ := generation.Recv()
		next <- event
	}()
	select {
	case event := <-next:
		t.Fatalf("received %v with no credit left", event)
	case <-time.After(300 * time.Millisecond):
	}
	if err := generation.Grant(3); err != nil {
		t.Fatal(err)
	}
	events = append(events, <-next, recv(t, generation), recv(t, generation))
	assertConsecutive(t, events, 0)
	if err := generation.Grant(1000); err != nil {
		t.Fatal(err)
	}

	events = append(events, collect(t, generation)...)

	assertConsecutive(t, events, 0)
	if completed := events[len(events)-1].GetCompleted(); completed.GetUsage().GetCompletionTokens() != 16 {
		t.Fatalf("last event = %v, want completed after 16 tokens", events[len(events)-1])
	}
}

func TestAttachToAnUnknownStreamIsNotFound(t *testing.T) {
	ctx, client := setup(t)
	generation, err := client.Attach(ctx, &llmrouterv1.AttachGeneration{StreamId: "no-such-stream"})
	if err != nil {
		t.Fatal(err)
	}

	_, err = generation.Recv()

	assertCode(t, err, codes.NotFound)
	var failure *llmrouter.Error
	if errors.As(err, &failure) && (failure.StreamID() != "no-such-stream" || failure.Reason() != "NOT_FOUND") {
		t.Fatalf("ErrorInfo = %v", failure.Info)
	}
}

func TestAttachReplaysAFinishedGenerationFromAnOffset(t *testing.T) {
	ctx, client := setup(t)
	live := collect(t, mustGenerate(ctx, t, client, greedy(prompt, 8)))
	generation, err := client.Attach(ctx, &llmrouterv1.AttachGeneration{StreamId: live[0].GetStreamId(), FromOffset: 3})
	if err != nil {
		t.Fatal(err)
	}

	replayed := collect(t, generation)

	assertSameEvents(t, replayed, live[3:])
	if _, err := generation.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv() after the end = %v, want io.EOF", err)
	}
}

func mustGenerate(ctx context.Context, t *testing.T, client *llmrouter.Client, start *llmrouterv1.StartGeneration) *llmrouter.Generation {
	t.Helper()
	generation, err := client.Generate(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	return generation
}

func TestASteeringRequestTheServerCannotApplyIsReportedAndTheCallGoesOn(t *testing.T) {
	ctx, client := setup(t)
	want := referenceText(ctx, t, client, greedy(prompt, 8))
	generation, err := client.Generate(ctx, credit(greedy(prompt, 8), 2))
	if err != nil {
		t.Fatal(err)
	}
	events := []*llmrouterv1.StreamEvent{recv(t, generation), recv(t, generation)}

	if err := generation.Resume(); err != nil { // not paused: refused, nothing changes
		t.Fatal(err)
	}
	if err := generation.Grant(1000); err != nil {
		t.Fatal(err)
	}
	events = append(events, collect(t, generation)...)

	assertConsecutive(t, events, 0)
	rejected := generation.Rejected()
	if len(rejected) != 1 || rejected[0].Code != codes.FailedPrecondition ||
		!strings.Contains(rejected[0].Message, "not paused") {
		t.Fatalf("rejected = %v, want one FAILED_PRECONDITION naming 'not paused'", rejected)
	}
	if text, _, err := generation.Wait(); err != nil || text != want {
		t.Fatalf("text %q, %v; want %q", text, err, want)
	}
}
