// Command generate streams one generation from an llmrouter server, then
// holds a two-turn chat.
//
//	go run ./examples/generate -address localhost:50051 "Say hello in five words."
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/protobuf/proto"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

func main() {
	address := flag.String("address", "localhost:50051", "the server's host:port")
	flag.Parse()
	prompt := "Say hello in five words."
	if flag.NArg() > 0 {
		prompt = flag.Arg(0)
	}
	if err := run(*address, prompt); err != nil {
		var failure *llmrouter.Error
		if errors.As(err, &failure) {
			log.Fatalf("%v (field %q, reason %q)", failure.Code, failure.Field(), failure.Reason())
		}
		log.Fatal(err)
	}
}

func run(address, prompt string) error {
	client, err := llmrouter.New(address)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	sampling := &llmrouterv1.SamplingParams{MaxTokens: proto.Int32(40), Temperature: proto.Float32(0)}
	generation, err := client.Generate(ctx, &llmrouterv1.StartGeneration{Prompt: prompt, Sampling: sampling})
	if err != nil {
		return err
	}
	for event, err := range generation.Events() {
		if err != nil {
			return err
		}
		if chunk := event.GetChunk(); chunk != nil {
			fmt.Print(chunk.GetText())
		}
		if completed := event.GetCompleted(); completed != nil {
			fmt.Printf("\n[%s, %d tokens]\n", completed.GetFinishReason(), completed.GetUsage().GetCompletionTokens())
		}
	}

	chat := client.NewChat(llmrouter.ChatOptions{System: "Answer in one short sentence.", Sampling: sampling})
	for _, question := range []string{"What is a lighthouse?", "Who keeps it?"} {
		reply, err := chat.Ask(ctx, question)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "> %s\n%s\n", question, reply)
	}
	return nil
}
