package llmrouter_test

import (
	"context"
	"testing"
	"time"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// These tests reach the server through a proxy that drops every connection
// mid-stream; the client must come back by itself and deliver each event
// exactly once.

var reconnecting = llmrouter.ReconnectPolicy{MaxAttempts: 5, Backoff: 50 * time.Millisecond}

func TestGenerationReattachesAfterTheConnectionDrops(t *testing.T) {
	ctx, direct := setup(t)
	want := referenceText(ctx, t, direct, greedy(prompt, 32))
	through := startProxy(t, address)
	client := dial(t, through, reconnecting)
	// Two credits hold the generation a few events ahead until it is paused,
	// so it is surely mid-stream when the connection drops; the credits left
	// carry over to the re-attached call.
	generation := mustGenerate(ctx, t, client, credit(greedy(prompt, 32), 2))
	events := []*llmrouterv1.StreamEvent{recv(t, generation), recv(t, generation)}
	if err := generation.Pause("about to drop"); err != nil {
		t.Fatal(err)
	}
	if err := generation.Grant(1000); err != nil {
		t.Fatal(err)
	}
	for events[len(events)-1].GetPaused() == nil {
		events = append(events, recv(t, generation))
	}

	through.drop()
	resume(ctx, t, direct, generation.StreamID())
	events = append(events, collect(t, generation)...)

	assertConsecutive(t, events, 0)
	text, completed, err := generation.Wait()
	if err != nil || text != want || completed.GetUsage().GetCompletionTokens() != 32 {
		t.Fatalf("text %q after %v, %v; want %q", text, completed, err, want)
	}
	if through.connections() < 2 {
		t.Fatalf("the proxy saw %d connections; the client did not reconnect", through.connections())
	}
}

func TestSubscriptionResubscribesAfterTheConnectionDrops(t *testing.T) {
	ctx, direct := setup(t)
	// One credit: the generation waits a few events ahead of its owner.
	owner := mustGenerate(ctx, t, direct, credit(greedy(prompt, 16), 1))
	ownerEvents := []*llmrouterv1.StreamEvent{recv(t, owner)}
	through := startProxy(t, address)
	client := dial(t, through, reconnecting)
	subscription, err := client.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer subscription.Close()
	if err := subscription.Add(&llmrouterv1.AddSubscription{StreamId: ownerEvents[0].GetStreamId()}); err != nil {
		t.Fatal(err)
	}
	if err := subscription.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var items []*llmrouterv1.SubscribeResponse
	for len(eventsOf(items)) < 2 {
		item, err := subscription.Recv()
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, item)
	}

	through.drop()
	if err := owner.Grant(1000); err != nil {
		t.Fatal(err)
	}
	ownerEvents = append(ownerEvents, collect(t, owner)...)
	for item, err := range subscription.Responses() {
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, item)
	}

	if items[0].GetAdded() == nil || items[len(items)-1].GetEnded() == nil || len(items) != len(ownerEvents)+2 {
		t.Fatalf("items: %v", items)
	}
	assertSameEvents(t, eventsOf(items), ownerEvents)
	if through.connections() < 2 {
		t.Fatalf("the proxy saw %d connections; the client did not reconnect", through.connections())
	}
}

// dial is a client of the test server through a proxy, reconnecting.
func dial(t *testing.T, through *proxy, policy llmrouter.ReconnectPolicy) *llmrouter.Client {
	t.Helper()
	client, err := llmrouter.New(through.address(), llmrouter.WithReconnect(policy))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// resume resumes a generation through an operator channel.
func resume(ctx context.Context, t *testing.T, client *llmrouter.Client, id string) {
	t.Helper()
	control, err := client.Control(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close()
	if _, err := control.Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
}
