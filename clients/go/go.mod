module github.com/llmrouter/llmrouter/clients/go

// The go line is the oldest Go that users need: crypto/rand.Text in a test needs 1.24 (the
// package itself needs 1.23, for range-over-func). Each required module must accept it too:
// grpc v1.80.0 is the newest release that asks for no more than Go 1.24 (v1.81 asks for
// 1.25, v1.85 for 1.26). A user's build still picks the newer versions their module needs.
go 1.24.0

require (
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260120221211-b8f7ae30c516
	google.golang.org/grpc v1.80.0
	google.golang.org/protobuf v1.36.12
)

require (
	golang.org/x/net v0.49.0 // indirect
	golang.org/x/sys v0.40.0 // indirect
	golang.org/x/text v0.33.0 // indirect
)
