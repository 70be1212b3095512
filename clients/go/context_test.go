package llmrouter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// assertContextError checks that err is an *llmrouter.Error with the code
// matching want (context.Canceled or context.DeadlineExceeded) and that
// errors.Is(err, want) holds.
func assertContextError(t *testing.T, err, want error) {
	t.Helper()
	code := status.FromContextError(want).Code()
	var failure *llmrouter.Error
	if !errors.Is(err, want) || !errors.As(err, &failure) || failure.Code != code || status.Code(err) != code {
		t.Fatalf("error = %v, want an *llmrouter.Error with code %v for which errors.Is(err, %v) holds", err, code, want)
	}
}

// heldGeneration is a generation that waits for its caller: CREDIT flow with
// one credit, taken.
func heldGeneration(ctx context.Context, t *testing.T, client *llmrouter.Client) *llmrouter.Generation {
	t.Helper()
	generation := mustGenerate(ctx, t, client, credit(greedy(longPrompt, 200), 1))
	recv(t, generation)
	return generation
}

func TestACancelledContextEndsCallsWithContextCanceled(t *testing.T) {
	parent, client := setup(t)

	t.Run("Generate", func(t *testing.T) {
		ctx, cancel := context.WithCancel(parent)
		cancel()
		generation, err := client.Generate(ctx, greedy(prompt, 4))
		if err == nil {
			_, _, err = generation.Wait()
		}
		assertContextError(t, err, context.Canceled)
	})
	t.Run("Recv", func(t *testing.T) {
		ctx, cancel := context.WithCancel(parent)
		generation := heldGeneration(ctx, t, client)
		cancel()
		_, err := generation.Recv()
		assertContextError(t, err, context.Canceled)
	})
	t.Run("Wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(parent)
		generation := heldGeneration(ctx, t, client)
		time.AfterFunc(50*time.Millisecond, cancel)
		_, _, err := generation.Wait()
		assertContextError(t, err, context.Canceled)
	})
	t.Run("Subscribe", func(t *testing.T) {
		owner := heldGeneration(parent, t, client)
		defer owner.Close()
		ctx, cancel := context.WithCancel(parent)
		subscription, err := client.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := subscription.Add(&llmrouterv1.AddSubscription{StreamId: owner.StreamID()}); err != nil {
			t.Fatal(err)
		}
		if _, err := subscription.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		for err == nil {
			_, err = subscription.Recv()
		}
		assertContextError(t, err, context.Canceled)
	})
	t.Run("Control", func(t *testing.T) {
		ctx, cancel := context.WithCancel(parent)
		control, err := client.Control(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer control.Close()
		if _, err := control.List(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		for range control.Changes() {
		}
		_, err = control.List(parent)
		assertContextError(t, err, context.Canceled)
		assertContextError(t, control.Err(), context.Canceled)
	})
	t.Run("Control command", func(t *testing.T) {
		control, err := client.Control(parent)
		if err != nil {
			t.Fatal(err)
		}
		defer control.Close()
		ctx, cancel := context.WithCancel(parent)
		cancel()
		_, err = control.Status(ctx, "no-such-stream")
		assertContextError(t, err, context.Canceled)
		if control.Err() != nil {
			t.Fatalf("the channel ended: %v", control.Err())
		}
	})
}

func TestAnExpiredDeadlineEndsCallsWithContextDeadlineExceeded(t *testing.T) {
	parent, client := setup(t)

	t.Run("Wait", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(parent, 200*time.Millisecond)
		defer cancel()
		generation := heldGeneration(ctx, t, client)
		_, _, err := generation.Wait()
		assertContextError(t, err, context.DeadlineExceeded)
	})
	t.Run("Subscribe", func(t *testing.T) {
		owner := heldGeneration(parent, t, client)
		defer owner.Close()
		ctx, cancel := context.WithTimeout(parent, 200*time.Millisecond)
		defer cancel()
		subscription, err := client.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := subscription.Add(&llmrouterv1.AddSubscription{StreamId: owner.StreamID()}); err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = subscription.Recv()
		}
		assertContextError(t, err, context.DeadlineExceeded)
	})
	t.Run("Control", func(t *testing.T) {
		control, err := client.Control(parent)
		if err != nil {
			t.Fatal(err)
		}
		defer control.Close()
		ctx, cancel := context.WithDeadline(parent, time.Now().Add(-time.Second))
		defer cancel()
		_, err = control.Status(ctx, "no-such-stream")
		assertContextError(t, err, context.DeadlineExceeded)
	})
	t.Run("unary", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(parent, time.Now().Add(-time.Second))
		defer cancel()
		_, err := client.ListModels(ctx)
		assertContextError(t, err, context.DeadlineExceeded)
	})
}

// An error the server sent is not the context's: it unwraps to nothing.
func TestAnErrorFromTheServerDoesNotUnwrapToTheContext(t *testing.T) {
	ctx, client := setup(t)
	generation := mustGenerate(ctx, t, client, greedy(prompt, 0))

	_, _, err := generation.Wait()

	if status.Code(err) != codes.InvalidArgument || errors.Is(err, context.Canceled) || errors.Unwrap(err) != nil {
		t.Fatalf("error = %v (unwraps to %v), want INVALID_ARGUMENT from the server", err, errors.Unwrap(err))
	}
}
