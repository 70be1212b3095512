package llmrouter_test

// Cancel has one meaning, whoever cancels: a generation in CREDIT flow whose
// caller took its 3 events and has no credits left keeps running a few events
// ahead (the server's window is 4). Cancelled by its caller or by an operator,
// the caller's call ends normally within a second with one completed event
// (CANCELLED, who, why), skipping the events it had no credit for; a
// subscriber out of credits gets the same event and its subscription ends
// normally.

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

const longPrompt = "Write a long story about a lighthouse keeper who talks to the sea every night."

// endsWithin is how long a cancelled call may take to end, out of credits or not.
const endsWithin = time.Second

var cancellers = []llmrouterv1.CancelledBy{
	llmrouterv1.CancelledBy_CANCELLED_BY_CALLER,
	llmrouterv1.CancelledBy_CANCELLED_BY_OPERATOR,
}

// held starts a long generation in CREDIT flow with 3 credits, takes its 3
// events, and waits until the server has produced past them.
func held(ctx context.Context, t *testing.T, client *llmrouter.Client) *llmrouter.Generation {
	t.Helper()
	start := credit(&llmrouterv1.StartGeneration{
		Prompt:   longPrompt,
		Sampling: &llmrouterv1.SamplingParams{MaxTokens: proto.Int32(200)},
	}, 3)
	generation := mustGenerate(ctx, t, client, start)
	assertConsecutive(t, []*llmrouterv1.StreamEvent{recv(t, generation), recv(t, generation), recv(t, generation)}, 0)
	for {
		reply, err := client.GetStream(ctx, generation.StreamID(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if reply.GetStatus().GetNextOffset() >= 5 {
			return generation
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cancelAs cancels the generation as its caller, or as an operator through Control.
func cancelAs(ctx context.Context, t *testing.T, client *llmrouter.Client, generation *llmrouter.Generation, by llmrouterv1.CancelledBy, reason string) {
	t.Helper()
	if by == llmrouterv1.CancelledBy_CANCELLED_BY_CALLER {
		if err := generation.Cancel(reason); err != nil {
			t.Fatal(err)
		}
		return
	}
	control, err := client.Control(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close()
	status, err := control.Cancel(ctx, generation.StreamID(), reason)
	assertState(t, status, err, llmrouterv1.StreamState_STREAM_STATE_CANCELLED)
}

// ending is what the rest of a call gave: its items and how it ended.
type ending[T any] struct {
	items []T
	err   error
}

// within reads the rest of a call and fails the test unless it ends within limit.
func within[T any](t *testing.T, limit time.Duration, recv func() (T, error)) ending[T] {
	t.Helper()
	done := make(chan ending[T], 1)
	go func() {
		var rest ending[T]
		for {
			item, err := recv()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					rest.err = err
				}
				done <- rest
				return
			}
			rest.items = append(rest.items, item)
		}
	}()
	select {
	case rest := <-done:
		return rest
	case <-time.After(limit):
		t.Fatalf("the call did not end within %v", limit)
		return ending[T]{}
	}
}

func assertCancelled(t *testing.T, completed *llmrouterv1.Completed, by llmrouterv1.CancelledBy, reason string) {
	t.Helper()
	if completed.GetFinishReason() != llmrouterv1.FinishReason_FINISH_REASON_CANCELLED ||
		completed.GetCancelledBy() != by || completed.GetCancelReason() != reason {
		t.Fatalf("completed = %v, want CANCELLED by %v for %q", completed, by, reason)
	}
}

func TestACancelEndsTheCallersCallAtOnceWithNoCreditsLeft(t *testing.T) {
	for _, by := range cancellers {
		t.Run(by.String(), func(t *testing.T) {
			ctx, client := setup(t)
			generation := held(ctx, t, client)

			cancelAs(ctx, t, client, generation, by, "seen enough")
			rest := within(t, endsWithin, generation.Recv)

			if rest.err != nil || len(rest.items) != 1 {
				t.Fatalf("the call gave %v and ended with %v; want one completed event and no error", rest.items, rest.err)
			}
			end := rest.items[0]
			if end.GetOffset() < 5 {
				t.Fatalf("completed at offset %d: it waited for credits", end.GetOffset())
			}
			assertCancelled(t, end.GetCompleted(), by, "seen enough")
			if end.GetCompleted().GetUsage().GetPromptTokens() == 0 {
				t.Fatalf("completed = %v, want the prompt tokens counted", end.GetCompleted())
			}
			_, completed, err := generation.Wait()
			if err != nil || !proto.Equal(completed, end.GetCompleted()) {
				t.Fatalf("Wait() = %v, %v; want the completed event", completed, err)
			}
		})
	}
}

func TestASubscriberOutOfCreditsGetsTheSameTerminalEvent(t *testing.T) {
	for _, by := range cancellers {
		t.Run(by.String(), func(t *testing.T) {
			ctx, client := setup(t)
			generation := held(ctx, t, client)
			subscription, err := client.Subscribe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer subscription.Close()
			flow := &llmrouterv1.FlowControl{Mode: llmrouterv1.FlowMode_FLOW_MODE_CREDIT, InitialCredits: 3}
			if err := subscription.Add(&llmrouterv1.AddSubscription{StreamId: generation.StreamID(), Flow: flow}); err != nil {
				t.Fatal(err)
			}
			if err := subscription.CloseSend(); err != nil {
				t.Fatal(err)
			}
			var seen []*llmrouterv1.SubscribeResponse
			for range 4 {
				item, err := subscription.Recv()
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, item)
			}

			cancelAs(ctx, t, client, generation, by, "seen enough")
			owner := within(t, endsWithin, generation.Recv)
			followed := within(t, endsWithin, subscription.Recv)

			if seen[0].GetAdded().GetStreamId() != generation.StreamID() {
				t.Fatalf("first item = %v, want added", seen[0])
			}
			assertConsecutive(t, eventsOf(seen), 0)
			if owner.err != nil || len(owner.items) != 1 || followed.err != nil || len(followed.items) != 2 {
				t.Fatalf("the owner got %v (%v), the subscriber %v (%v)", owner.items, owner.err, followed.items, followed.err)
			}
			end := owner.items[0]
			assertCancelled(t, end.GetCompleted(), by, "seen enough")
			if !proto.Equal(followed.items[0].GetEvent(), end) {
				t.Fatalf("the subscriber got %v, the owner %v", followed.items[0], end)
			}
			ended := followed.items[1].GetEnded()
			if ended.GetNextOffset() != end.GetOffset()+1 || llmrouter.EndedError(ended) != nil {
				t.Fatalf("last item = %v, want ended at %d without an error", followed.items[1], end.GetOffset()+1)
			}
		})
	}
}
