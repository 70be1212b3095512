// Command generate is one side of the repository's cross-language test: it
// starts a greedy generation under a given stream id, pauses it after its
// first chunk, and prints what it sees, one line each:
//
//	event {StreamEvent as protojson}
//	end OK              the call ended after the completed event (a cancel included)
//	end CODE OFFSET     the call failed with the numeric gRPC CODE; OFFSET is the next offset
//
// It holds back credits until the pause is sent, so the generation cannot
// finish first on a server with a small flow window.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

func main() {
	address := flag.String("address", "localhost:50051", "the server's host:port")
	streamID := flag.String("stream-id", "", "the generation's stream id")
	maxTokens := flag.Int("max-tokens", 32, "the most tokens to generate")
	flag.Parse()
	if err := run(*address, *streamID, int32(*maxTokens)); err != nil {
		log.Fatal(err)
	}
}

func run(address, streamID string, maxTokens int32) error {
	client, err := llmrouter.New(address)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	generation, err := client.Generate(ctx, &llmrouterv1.StartGeneration{
		Prompt:   "Write a story about a lighthouse keeper.",
		StreamId: streamID,
		Sampling: &llmrouterv1.SamplingParams{MaxTokens: proto.Int32(maxTokens), Temperature: proto.Float32(0)},
		Flow:     &llmrouterv1.FlowControl{Mode: llmrouterv1.FlowMode_FLOW_MODE_CREDIT, InitialCredits: 2},
	})
	if err != nil {
		return err
	}
	paused := false
	for event, err := range generation.Events() {
		if err != nil {
			return end(err)
		}
		line, err := protojson.Marshal(event)
		if err != nil {
			return err
		}
		fmt.Printf("event %s\n", line)
		if event.GetChunk() != nil && !paused {
			paused = true
			if err := pauseAndGrant(generation); err != nil {
				return err
			}
		}
	}
	fmt.Println("end OK")
	return nil
}

func pauseAndGrant(generation *llmrouter.Generation) error {
	if err := generation.Pause("cross-language test"); err != nil {
		return err
	}
	return generation.Grant(1000)
}

// end prints how the call failed; it returns errors it cannot describe.
func end(err error) error {
	var failure *llmrouter.Error
	if !errors.As(err, &failure) {
		return err
	}
	offset, ok := failure.Offset()
	if !ok {
		return err
	}
	fmt.Printf("end %d %d\n", failure.Code, offset)
	return nil
}
