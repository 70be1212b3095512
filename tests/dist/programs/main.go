// Command try streams one greedy generation through the llmrouter Go client.
//
// Usage: try ADDRESS PROMPT MAX_TOKENS. It prints a line per event: "chunk" and
// the text as JSON, "completed" with the finish reason's number and the
// completion tokens, or the name of any other kind.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: try ADDRESS PROMPT MAX_TOKENS")
	}
	maxTokens, err := strconv.Atoi(os.Args[3])
	if err != nil {
		log.Fatal(err)
	}
	if err := run(os.Args[1], os.Args[2], int32(maxTokens)); err != nil {
		log.Fatal(err)
	}
}

func run(address, prompt string, maxTokens int32) error {
	client, err := llmrouter.New(address)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	sampling := &llmrouterv1.SamplingParams{MaxTokens: proto.Int32(maxTokens), Temperature: proto.Float32(0)}
	generation, err := client.Generate(ctx, &llmrouterv1.StartGeneration{Prompt: prompt, Sampling: sampling})
	if err != nil {
		return err
	}
	kinds := (&llmrouterv1.StreamEvent{}).ProtoReflect().Descriptor().Oneofs().ByName("kind")
	for event, err := range generation.Events() {
		if err != nil {
			return err
		}
		if chunk := event.GetChunk(); chunk != nil {
			text, err := json.Marshal(chunk.GetText())
			if err != nil {
				return err
			}
			fmt.Printf("chunk %s\n", text)
		} else if completed := event.GetCompleted(); completed != nil {
			fmt.Printf("completed %d %d\n", completed.GetFinishReason(), completed.GetUsage().GetCompletionTokens())
		} else {
			fmt.Println(event.ProtoReflect().WhichOneof(kinds).Name())
		}
	}
	return nil
}
