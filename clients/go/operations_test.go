package llmrouter_test

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// These RPCs answer UNIMPLEMENTED on servers that do not have them yet; the
// client must surface that as an *Error, not hang or panic.

func TestSubscribeSurfacesUnimplemented(t *testing.T) {
	ctx, client := setup(t)
	subscription, err := client.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer subscription.Close()
	if err := subscription.Add(&llmrouterv1.AddSubscription{StreamId: "gen-unknown"}); err != nil && !errors.Is(err, llmrouter.ErrEnded) {
		t.Fatal(err)
	}

	_, err = subscription.Recv()

	assertCode(t, err, codes.Unimplemented)
}

func TestControlSurfacesUnimplemented(t *testing.T) {
	ctx, client := setup(t)
	control, err := client.Control(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close()

	_, err = control.Status(ctx, "gen-unknown")

	assertCode(t, err, codes.Unimplemented)
	assertCode(t, control.Err(), codes.Unimplemented)
	if _, open := <-control.Changes(); open {
		t.Fatal("Changes() is still open after the channel ended")
	}
}

func assertCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	var failure *llmrouter.Error
	if !errors.As(err, &failure) || failure.Code != code || failure.Info.GetDomain() != "llmrouter.v1" {
		t.Fatalf("error = %v, want an *llmrouter.Error with code %v and ErrorInfo", err, code)
	}
}
