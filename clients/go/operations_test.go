package llmrouter_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// subscribeAll subscribes to each stream id from offset 0, says no more
// requests follow, and returns every item until the call ends.
func subscribeAll(ctx context.Context, t *testing.T, client *llmrouter.Client, ids ...string) []*llmrouterv1.SubscribeResponse {
	t.Helper()
	subscription, err := client.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer subscription.Close()
	for _, id := range ids {
		if err := subscription.Add(&llmrouterv1.AddSubscription{StreamId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := subscription.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var items []*llmrouterv1.SubscribeResponse
	for item, err := range subscription.Responses() {
		if err != nil {
			t.Fatalf("after %d items: %v", len(items), err)
		}
		items = append(items, item)
	}
	return items
}

func eventsOf(items []*llmrouterv1.SubscribeResponse) []*llmrouterv1.StreamEvent {
	var events []*llmrouterv1.StreamEvent
	for _, item := range items {
		if event := item.GetEvent(); event != nil {
			events = append(events, event)
		}
	}
	return events
}

func assertSameEvents(t *testing.T, got, want []*llmrouterv1.StreamEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("event %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func uniqueID(prefix string) string {
	return prefix + "-" + rand.Text()[:10]
}

func TestSubscribeReplaysAFinishedGenerationAsItWasStreamed(t *testing.T) {
	ctx, client := setup(t)
	live := collect(t, mustGenerate(ctx, t, client, greedy(prompt, 8)))

	items := subscribeAll(ctx, t, client, live[0].GetStreamId())

	added, ended := items[0].GetAdded(), items[len(items)-1].GetEnded()
	if added.GetState() != llmrouterv1.StreamState_STREAM_STATE_COMPLETED || added.GetFromOffset() != 0 {
		t.Fatalf("first item = %v, want added in state COMPLETED", items[0])
	}
	assertSameEvents(t, eventsOf(items), live)
	if ended.GetNextOffset() != uint64(len(live)) || llmrouter.EndedError(ended) != nil {
		t.Fatalf("last item = %v, want ended at %d without error", items[len(items)-1], len(live))
	}
}

func TestSubscribeFollowsARunningGenerationLive(t *testing.T) {
	ctx, client := setup(t)
	// One credit: the owner gets `started` and the generation waits a few
	// events ahead until it grants more.
	owner := mustGenerate(ctx, t, client, credit(greedy(prompt, 16), 1))
	started := recv(t, owner)
	subscription, err := client.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer subscription.Close()
	if err := subscription.Add(&llmrouterv1.AddSubscription{StreamId: started.GetStreamId()}); err != nil {
		t.Fatal(err)
	}
	added, err := subscription.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if state := added.GetAdded().GetState(); state != llmrouterv1.StreamState_STREAM_STATE_RUNNING && state != llmrouterv1.StreamState_STREAM_STATE_QUEUED {
		t.Fatalf("added = %v, want a running generation", added)
	}
	if err := subscription.CloseSend(); err != nil {
		t.Fatal(err)
	}

	if err := owner.Grant(1000); err != nil {
		t.Fatal(err)
	}
	ownerEvents := append([]*llmrouterv1.StreamEvent{started}, collect(t, owner)...)
	var items []*llmrouterv1.SubscribeResponse
	for item, err := range subscription.Responses() {
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, item)
	}

	assertSameEvents(t, eventsOf(items), ownerEvents)
	if ended := items[len(items)-1].GetEnded(); ended.GetNextOffset() != uint64(len(ownerEvents)) {
		t.Fatalf("last item = %v", items[len(items)-1])
	}
}

func TestSubscribeEndsOnlyTheSubscriptionToAnUnknownStream(t *testing.T) {
	ctx, client := setup(t)
	live := collect(t, mustGenerate(ctx, t, client, greedy(prompt, 4)))

	items := subscribeAll(ctx, t, client, "no-such-stream", live[0].GetStreamId())

	first := items[0].GetEnded()
	if first.GetStreamId() != "no-such-stream" {
		t.Fatalf("first item = %v, want the unknown stream's ended", items[0])
	}
	assertCommandError(t, llmrouter.EndedError(first), codes.NotFound, "stream 'no-such-stream' not found")
	assertErrorInfo(t, llmrouter.EndedError(first), "NOT_FOUND", "no-such-stream")
	assertSameEvents(t, eventsOf(items), live)
}

func TestControlStepsAndWatchesAGenerationByID(t *testing.T) {
	ctx, client := setup(t)
	control, err := client.Control(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close()
	if _, err := control.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	id := uniqueID("operated")
	changes := statesOf(control, id)
	start := credit(greedy(prompt, 32), 1)
	start.StreamId = id
	owner := mustGenerate(ctx, t, client, start)
	events := []*llmrouterv1.StreamEvent{recv(t, owner)}
	for _, want := range []llmrouterv1.StreamState{llmrouterv1.StreamState_STREAM_STATE_QUEUED, llmrouterv1.StreamState_STREAM_STATE_RUNNING} {
		if got := <-changes; got != want {
			t.Fatalf("pushed %v, want %v", got, want)
		}
	}

	status, err := control.Status(ctx, id)
	assertState(t, status, err, llmrouterv1.StreamState_STREAM_STATE_RUNNING)
	running, err := control.List(ctx, llmrouterv1.StreamState_STREAM_STATE_RUNNING)
	if err != nil || !slices.ContainsFunc(running, func(s *llmrouterv1.StreamStatus) bool { return s.GetStreamId() == id }) {
		t.Fatalf("List(RUNNING) = %v, %v; want %s in it", running, err, id)
	}
	status, err = control.Pause(ctx, id, "ops")
	assertState(t, status, err, llmrouterv1.StreamState_STREAM_STATE_PAUSED)
	status, err = control.Resume(ctx, id)
	assertState(t, status, err, llmrouterv1.StreamState_STREAM_STATE_RUNNING)
	status, err = control.Cancel(ctx, id, "enough")
	assertState(t, status, err, llmrouterv1.StreamState_STREAM_STATE_CANCELLED)

	for _, want := range []llmrouterv1.StreamState{llmrouterv1.StreamState_STREAM_STATE_PAUSED, llmrouterv1.StreamState_STREAM_STATE_RUNNING, llmrouterv1.StreamState_STREAM_STATE_CANCELLED} {
		if got := <-changes; got != want {
			t.Fatalf("pushed %v, want %v", got, want)
		}
	}
	// The owner is out of credits: it skips to the completed event, which ends its call.
	events = append(events, collect(t, owner)...)
	if len(events) != 2 || events[1].GetCompleted() == nil {
		t.Fatalf("the owner got %v, want started then completed", events)
	}
	completed := events[1].GetCompleted()
	if completed.GetFinishReason() != llmrouterv1.FinishReason_FINISH_REASON_CANCELLED ||
		completed.GetCancelledBy() != llmrouterv1.CancelledBy_CANCELLED_BY_OPERATOR || completed.GetCancelReason() != "enough" {
		t.Fatalf("completed = %v, want CANCELLED by the operator for %q", completed, "enough")
	}
	if events[1].GetOffset() != status.GetNextOffset()-1 {
		t.Fatalf("completed at offset %d; Control says the next offset is %d", events[1].GetOffset(), status.GetNextOffset())
	}
	// What it skipped stays in the log: the pause and the resume, in offset order.
	replayed := eventsOf(subscribeAll(ctx, t, client, id))
	assertConsecutive(t, replayed, 0)
	if uint64(len(replayed)) != status.GetNextOffset() || !proto.Equal(replayed[len(replayed)-1], events[1]) {
		t.Fatalf("replayed %d events ending with %v", len(replayed), replayed[len(replayed)-1])
	}
	paused := indexOf(replayed, func(e *llmrouterv1.StreamEvent) bool { return e.GetPaused().GetReason() == "ops" })
	resumed := indexOf(replayed, func(e *llmrouterv1.StreamEvent) bool { return e.GetResumed() != nil })
	if paused <= 0 || resumed < paused {
		t.Fatalf("paused at %d, resumed at %d", paused, resumed)
	}
}

// statesOf forwards the pushed states of one generation.
func statesOf(control *llmrouter.Control, id string) <-chan llmrouterv1.StreamState {
	states := make(chan llmrouterv1.StreamState, 16)
	go func() {
		defer close(states)
		for change := range control.Changes() {
			if change.GetStreamId() == id {
				states <- change.GetState()
			}
		}
	}()
	return states
}

func assertState(t *testing.T, status *llmrouterv1.StreamStatus, err error, want llmrouterv1.StreamState) {
	t.Helper()
	if err != nil || status.GetState() != want {
		t.Fatalf("status = %v, %v; want state %v", status, err, want)
	}
}

func TestControlAnswersAFailedCommandInBandAndStaysOpen(t *testing.T) {
	ctx, client := setup(t)
	control, err := client.Control(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close()
	finished := collect(t, mustGenerate(ctx, t, client, greedy(prompt, 2)))[0].GetStreamId()

	_, unknown := control.Status(ctx, "no-such-stream")
	_, late := control.Pause(ctx, finished, "too late")
	_, watchUnknown := control.Watch(ctx, "no-such-stream")
	status, err := control.Status(ctx, finished)

	assertCommandError(t, unknown, codes.NotFound, "stream 'no-such-stream' not found")
	assertCommandError(t, late, codes.FailedPrecondition, "it has completed")
	assertCommandError(t, watchUnknown, codes.NotFound, "no-such-stream")
	assertErrorInfo(t, unknown, "NOT_FOUND", "no-such-stream")
	assertErrorInfo(t, late, "FAILED_PRECONDITION", finished)
	assertErrorInfo(t, watchUnknown, "NOT_FOUND", "no-such-stream")
	assertState(t, status, err, llmrouterv1.StreamState_STREAM_STATE_COMPLETED)
	if control.Err() != nil {
		t.Fatalf("the channel ended: %v", control.Err())
	}
}

// assertErrorInfo checks the ErrorInfo an in-band error carries: its reason
// and the stream id in its metadata.
func assertErrorInfo(t *testing.T, err error, reason, streamID string) {
	t.Helper()
	var failure *llmrouter.Error
	if !errors.As(err, &failure) || failure.Info.GetDomain() != "llmrouter.v1" || failure.Reason() != reason || failure.StreamID() != streamID {
		t.Fatalf("error = %v with ErrorInfo %v, want reason %s for stream %q", err, failure.Info, reason, streamID)
	}
}

func assertCommandError(t *testing.T, err error, code codes.Code, message string) {
	t.Helper()
	var failure *llmrouter.Error
	if !errors.As(err, &failure) || failure.Code != code || !strings.Contains(failure.Message, message) {
		t.Fatalf("error = %v, want %v naming %q", err, code, message)
	}
}

func TestGetStatsReportsEveryRoute(t *testing.T) {
	ctx, client := setup(t)

	reply, err := client.GetStats(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	if got := reply.GetWindow().AsDuration(); got != 5*time.Minute {
		t.Fatalf("window = %v, want 5m", got)
	}
	if len(reply.GetPerModel()) != 1 || reply.GetPerModel()[0].GetModel() != "smollm2-135m-instruct" {
		t.Fatalf("per_model = %v, want one report for smollm2-135m-instruct", reply.GetPerModel())
	}
	if reply.GetTotal().GetModel() != "" {
		t.Fatalf("total.model = %q, want empty", reply.GetTotal().GetModel())
	}
}

func TestGetStatsOfAnUnknownModelIsNotFound(t *testing.T) {
	ctx, client := setup(t)

	_, err := client.GetStats(ctx, "gpt-17")

	assertCode(t, err, codes.NotFound)
}

func TestSubscriptionEndsWithEOFWhenNothingIsFollowed(t *testing.T) {
	ctx, client := setup(t)
	subscription, err := client.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer subscription.Close()

	if err := subscription.CloseSend(); err != nil {
		t.Fatal(err)
	}

	if _, err := subscription.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv() = %v, want io.EOF", err)
	}
}

// assertCode checks that a call failed with an *llmrouter.Error with the
// given code and the server's ErrorInfo.
func assertCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	var failure *llmrouter.Error
	if !errors.As(err, &failure) || failure.Code != code || failure.Info.GetDomain() != "llmrouter.v1" {
		t.Fatalf("error = %v, want an *llmrouter.Error with code %v and ErrorInfo", err, code)
	}
}
