package llmrouter_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

func TestChatKeepsTheHistoryAndStopSequences(t *testing.T) {
	ctx, client := setup(t)
	chat := client.NewChat(llmrouter.ChatOptions{
		System:   "You are a terse assistant.",
		Stop:     []string{"."},
		Sampling: &llmrouterv1.SamplingParams{MaxTokens: proto.Int32(8), Temperature: proto.Float32(0)},
	})

	first, err := chat.Ask(ctx, "Name a colour.")
	if err != nil {
		t.Fatal(err)
	}
	second, err := chat.Ask(ctx, "Name another one.")
	if err != nil {
		t.Fatal(err)
	}

	want := []string{"You are a terse assistant.", "Name a colour.", first, "Name another one.", second}
	roles := []llmrouterv1.ChatRole{
		llmrouterv1.ChatRole_CHAT_ROLE_SYSTEM, llmrouterv1.ChatRole_CHAT_ROLE_USER, llmrouterv1.ChatRole_CHAT_ROLE_ASSISTANT,
		llmrouterv1.ChatRole_CHAT_ROLE_USER, llmrouterv1.ChatRole_CHAT_ROLE_ASSISTANT,
	}
	messages := chat.Messages()
	if len(messages) != len(want) {
		t.Fatalf("history = %v", messages)
	}
	for i, message := range messages {
		if message.GetContent() != want[i] || message.GetRole() != roles[i] {
			t.Fatalf("message %d = %v, want %v %q", i, message, roles[i], want[i])
		}
	}
	if first == "" || second == "" || strings.Contains(first+second, ".") {
		t.Fatalf("replies %q and %q: want non-empty text without the stop sequence", first, second)
	}
}

func TestChatLeavesTheHistoryUnchangedOnFailure(t *testing.T) {
	ctx, client := setup(t)
	chat := client.NewChat(llmrouter.ChatOptions{Model: "gpt-17"})

	if _, err := chat.Ask(ctx, "Hello?"); err == nil {
		t.Fatal("Ask() succeeded on an unknown model")
	}

	if messages := chat.Messages(); len(messages) != 0 {
		t.Fatalf("history = %v, want empty", messages)
	}
}
