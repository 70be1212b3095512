// Command loadgo is bench/load.py's --serve protocol in Go: a load client whose cost per
// event is a few microseconds, so that thousands of streams at once measure the gateway
// rather than the client (grpc.aio spends over 100 µs of the load core on each message it
// reads). --kind grpc calls Generate through the Go client's generated stubs (50 streams
// per connection); --kind http posts to an OpenAI-compatible /chat/completions and reads
// its SSE lines with net/http. Each stdin line is a batch as JSON (load.py's options);
// the process opens the connections it needs, answers {"ready": true}, takes
// {"start_at": T, "deadline": D} and answers with {"streams": [...], "cpu_seconds": ...}
// in load.py's format, one line each.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	pb "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const streamsPerChannel = 50

// windowBytes is each stream's and connection's HTTP/2 window: a fixed one (no BDP
// pings) of 16 MiB, so the client sends a WINDOW_UPDATE now and then, not every few reads.
const windowBytes = 1 << 24

type spec struct {
	Kind        string   `json:"kind"`
	Target      string   `json:"target"`
	Header      []string `json:"header"`
	Model       string   `json:"model"`
	Tokens      int      `json:"tokens"`
	Concurrency int      `json:"concurrency"`
	PerWorker   int      `json:"per_worker"`
	Duration    float64  `json:"duration"`
	Stagger     float64  `json:"stagger"`
	Coalescing  string   `json:"coalescing"`
	Gaps        bool     `json:"gaps"`
	Process     int      `json:"process"`
	Processes   int      `json:"processes"`
	Total       int      `json:"total"`
	startAt     time.Time
	deadline    time.Time
}

type result struct {
	Start  float64   `json:"start"`
	Round  int       `json:"round"`
	TTFT   *float64  `json:"ttft"`
	End    float64   `json:"end"`
	Tokens int       `json:"tokens"`
	Events int       `json:"events"`
	Error  string    `json:"error"`
	Gaps   []float64 `json:"gaps"`
}

type recorder struct {
	result
	began, last time.Time
	keepGaps    bool
	text        strings.Builder
}

func newRecorder(keepGaps bool, round int) *recorder {
	now := time.Now()
	return &recorder{result: result{Start: float64(now.UnixNano()) / 1e9, Round: round,
		Gaps: []float64{}}, began: now, keepGaps: keepGaps}
}

func (r *recorder) add(text string) {
	now := time.Now()
	if r.TTFT == nil {
		ttft := now.Sub(r.began).Seconds()
		r.TTFT = &ttft
	} else if r.keepGaps {
		r.Gaps = append(r.Gaps, math.Round(float64(now.Sub(r.last).Nanoseconds())/1e3)/1e3)
	}
	r.last = now
	r.Events++
	r.text.WriteString(text)
}

func (r *recorder) done(tokens int) result {
	r.End = time.Since(r.began).Seconds()
	got := r.text.String()
	r.Tokens = strings.Count(got, " ")
	if r.Error == "" && got != expected(tokens) {
		r.Error = fmt.Sprintf("text differs: got %d chars, %.40q...", len(got), got)
	}
	return r.result
}

func expected(tokens int) string {
	var b strings.Builder
	for i := 0; i < tokens; i++ {
		fmt.Fprintf(&b, " t%d", i)
	}
	return b.String()
}

// codeName spells a gRPC code as Python's grpc.StatusCode names do (DEADLINE_EXCEEDED).
func codeName(err error) string {
	name := status.Code(err).String()
	var b strings.Builder
	for i, c := range name {
		if i > 0 && c >= 'A' && c <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(c)
	}
	return strings.ToUpper(b.String())
}

type connections struct {
	clients map[string][]pb.RouterServiceClient
	http    *http.Client
}

func (c *connections) prepare(s *spec) (func(context.Context, int, *recorder), error) {
	if s.Kind == "http" {
		return func(ctx context.Context, _ int, r *recorder) { httpStream(ctx, c.http, s, r) }, nil
	}
	clients := c.clients[s.Target]
	for len(clients)*streamsPerChannel < s.Concurrency {
		conn, err := grpc.NewClient(s.Target, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(windowBytes), grpc.WithInitialConnWindowSize(windowBytes))
		if err != nil {
			return nil, err
		}
		conn.Connect()
		clients = append(clients, pb.NewRouterServiceClient(conn))
	}
	c.clients[s.Target] = clients
	mode := pb.CoalesceMode(pb.CoalesceMode_value["COALESCE_MODE_"+strings.ToUpper(s.Coalescing)])
	return func(ctx context.Context, i int, r *recorder) {
		grpcStream(ctx, clients[i/streamsPerChannel], s, mode, r)
	}, nil
}

func grpcStream(ctx context.Context, client pb.RouterServiceClient, s *spec, mode pb.CoalesceMode, r *recorder) {
	start := &pb.StartGeneration{
		Prompt:        "bench",
		Model:         s.Model,
		Sampling:      &pb.SamplingParams{MaxTokens: proto.Int32(int32(s.Tokens))},
		StreamOptions: &pb.StreamOptions{Coalescing: &pb.Coalescing{Mode: mode}},
	}
	stream, err := client.Generate(ctx)
	if err == nil {
		err = stream.Send(&pb.GenerateRequest{Action: &pb.GenerateRequest_Start{Start: start}})
	}
	if err == nil {
		err = stream.CloseSend()
	}
	for err == nil {
		var response *pb.GenerateResponse
		response, err = stream.Recv()
		if err == nil {
			if text := response.GetEvent().GetChunk().GetText(); text != "" {
				r.add(text)
			}
		}
	}
	if err != io.EOF {
		if ctx.Err() != nil {
			r.Error = "DEADLINE: still streaming at the run's deadline"
		} else {
			r.Error = codeName(err) + ": " + status.Convert(err).Message()
		}
	}
}

type sseChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
}

func httpStream(ctx context.Context, client *http.Client, s *spec, r *recorder) {
	body, _ := json.Marshal(map[string]any{"model": s.Model, "max_tokens": s.Tokens, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": "bench"}}})
	url := strings.TrimRight(s.Target, "/") + "/chat/completions"
	request, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		r.Error = err.Error()
		return
	}
	request.Header.Set("content-type", "application/json")
	for _, pair := range s.Header {
		name, value, _ := strings.Cut(pair, "=")
		request.Header.Set(name, value)
	}
	response, err := client.Do(request)
	if err != nil {
		r.Error = httpError(ctx, err)
		return
	}
	defer response.Body.Close()
	if response.StatusCode != 200 {
		text, _ := io.ReadAll(response.Body)
		r.Error = fmt.Sprintf("HTTP %d: %q", response.StatusCode, text)
		return
	}
	lines := bufio.NewReader(response.Body)
	for {
		line, err := lines.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "data:") && !strings.HasSuffix(line, "[DONE]") {
			var chunk sseChunk
			if json.Unmarshal([]byte(line[5:]), &chunk) == nil {
				for _, choice := range chunk.Choices {
					if choice.Delta.Content != "" {
						r.add(choice.Delta.Content)
					}
				}
			}
		}
		if err == io.EOF {
			return
		} else if err != nil {
			r.Error = httpError(ctx, err)
			return
		}
	}
}

func httpError(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "DEADLINE: still streaming at the run's deadline"
	}
	return err.Error()
}

func another(s *spec, round int) bool {
	now := time.Now()
	if !s.deadline.IsZero() && !now.Before(s.deadline) {
		return false
	}
	if s.Duration > 0 {
		return round == 0 || now.Before(s.startAt.Add(seconds(s.Duration)))
	}
	return round < s.PerWorker
}

func seconds(value float64) time.Duration { return time.Duration(value * float64(time.Second)) }

func cpuSeconds() float64 {
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
}

func batch(s *spec, one func(context.Context, int, *recorder)) map[string]any {
	cpu := cpuSeconds()
	time.Sleep(time.Until(s.startAt))
	// The deadline is the client's own: cancelled by a timer, not a context deadline, which
	// gRPC would send the server as grpc-timeout for it to end the call first.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !s.deadline.IsZero() {
		timer := time.AfterFunc(time.Until(s.deadline), cancel)
		defer timer.Stop()
	}
	var mu sync.Mutex
	results := []result{}
	var wg sync.WaitGroup
	for i := 0; i < s.Concurrency; i++ {
		wg.Add(1)
		go func(index int) {
			defer wg.Done()
			time.Sleep(seconds(s.Stagger * float64(index*s.Processes+s.Process) / float64(s.Total)))
			for round := 0; another(s, round); round++ {
				r := newRecorder(s.Gaps, round)
				one(ctx, index, r)
				done := r.done(s.Tokens)
				mu.Lock()
				results = append(results, done)
				mu.Unlock()
				if done.Error != "" {
					return // a worker stops at its first error
				}
			}
		}(i)
	}
	wg.Wait()
	return map[string]any{"streams": results, "cpu_seconds": cpuSeconds() - cpu}
}

func epoch(value float64) time.Time {
	if value == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(value*1e9))
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := json.NewEncoder(os.Stdout)
	transport := &http.Transport{MaxIdleConns: 0, MaxIdleConnsPerHost: 100000, DisableCompression: true}
	conns := &connections{clients: map[string][]pb.RouterServiceClient{}, http: &http.Client{Transport: transport}}
	for {
		line, err := in.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) == 0 && err != nil {
			return
		}
		s := spec{Model: "fast", Tokens: 200, Concurrency: 1, PerWorker: 1, Coalescing: "token", Processes: 1}
		if err := json.Unmarshal(line, &s); err != nil {
			fmt.Fprintln(os.Stderr, "bad batch:", err)
			os.Exit(2)
		}
		if s.Total == 0 {
			s.Total = s.Concurrency * s.Processes
		}
		one, err := conns.prepare(&s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "connect:", err)
			os.Exit(2)
		}
		_ = out.Encode(map[string]bool{"ready": true})
		var start struct {
			StartAt  float64 `json:"start_at"`
			Deadline float64 `json:"deadline"`
		}
		line, _ = in.ReadBytes('\n')
		if err := json.Unmarshal(line, &start); err != nil {
			fmt.Fprintln(os.Stderr, "bad start:", err)
			os.Exit(2)
		}
		s.startAt, s.deadline = epoch(start.StartAt), epoch(start.Deadline)
		_ = out.Encode(batch(&s, one))
	}
}
