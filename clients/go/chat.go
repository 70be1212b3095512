package llmrouter

import (
	"context"
	"slices"

	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// ChatOptions are the settings every turn of a Chat is sent with.
type ChatOptions struct {
	// System is the system message opening the conversation; empty for none.
	System string
	// Model is a route name or "backend/model"; empty selects the default route.
	Model string
	// Stop lists strings that end each reply; they are not part of it.
	Stop []string
	// Sampling holds the sampling parameters; nil takes the server's defaults.
	Sampling *llmrouterv1.SamplingParams
}

// Chat keeps a conversation: each turn sends the whole history with the same
// model, sampling and stop sequences. A turn joins the history when its reply
// completes; a failed or cancelled reply leaves the history unchanged. A Chat
// runs one turn at a time.
type Chat struct {
	client   *Client
	options  ChatOptions
	messages []*llmrouterv1.ChatMessage
}

// NewChat starts a conversation with the given settings.
func (c *Client) NewChat(options ChatOptions) *Chat {
	chat := &Chat{client: c, options: options}
	if options.System != "" {
		chat.messages = append(chat.messages, message(llmrouterv1.ChatRole_CHAT_ROLE_SYSTEM, options.System))
	}
	return chat
}

// Messages returns a copy of the history, oldest first.
func (ch *Chat) Messages() []*llmrouterv1.ChatMessage {
	return slices.Clone(ch.messages)
}

// Send starts the reply to text; read it from the returned Generation.
func (ch *Chat) Send(ctx context.Context, text string) (*Generation, error) {
	turn := message(llmrouterv1.ChatRole_CHAT_ROLE_USER, text)
	start := &llmrouterv1.StartGeneration{
		Messages: append(slices.Clone(ch.messages), turn),
		Model:    ch.options.Model,
		Stop:     ch.options.Stop,
		Sampling: ch.options.Sampling,
	}
	generation, err := ch.client.Generate(ctx, start)
	if err != nil {
		return nil, err
	}
	generation.onCompleted = func(reply string, completed *llmrouterv1.Completed) {
		if completed.GetFinishReason() != llmrouterv1.FinishReason_FINISH_REASON_CANCELLED {
			ch.messages = append(ch.messages, turn, message(llmrouterv1.ChatRole_CHAT_ROLE_ASSISTANT, reply))
		}
	}
	return generation, nil
}

// Ask sends text and waits for the whole reply.
func (ch *Chat) Ask(ctx context.Context, text string) (string, error) {
	generation, err := ch.Send(ctx, text)
	if err != nil {
		return "", err
	}
	reply, _, err := generation.Wait()
	return reply, err
}

func message(role llmrouterv1.ChatRole, content string) *llmrouterv1.ChatMessage {
	return &llmrouterv1.ChatMessage{Role: role, Content: content}
}
