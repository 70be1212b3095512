package llmrouter_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// address is where the `llmrouter serve` process started by TestMain listens.
var address string

// TestMain runs every test against one `llmrouter serve` process on a free
// loopback port, and stops it with SIGTERM afterwards.
func TestMain(m *testing.M) {
	// On Linux the server is signalled when the thread that started it ends.
	runtime.LockOSThread()
	server, err := startServer("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	address = server.address
	code := m.Run()
	if err := server.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// startConfiguredServer runs a second `llmrouter serve` with the
// configuration config (YAML) until the test ends, and returns its address.
func startConfiguredServer(t *testing.T, config string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "llmrouter.yaml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// The server is signalled when the thread that started it ends, so this
	// goroutine keeps its thread until the server has stopped; cleanups run on
	// the test's goroutine.
	runtime.LockOSThread()
	server, err := startServer(file)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer runtime.UnlockOSThread()
		if err := server.stop(); err != nil {
			t.Error(err)
		}
	})
	return server.address
}

// serverProcess is a running `llmrouter serve`.
type serverProcess struct {
	address string
	cmd     *exec.Cmd
	exited  chan struct{}
	logs    bytes.Buffer
}

// llmrouterBin is $LLMROUTER_BIN, or the repository's .venv/bin/llmrouter.
func llmrouterBin() string {
	if bin := os.Getenv("LLMROUTER_BIN"); bin != "" {
		return bin
	}
	bin, _ := filepath.Abs(filepath.Join("..", "..", ".venv", "bin", "llmrouter"))
	return bin
}

// startServer starts `llmrouter serve` on a free loopback port, with the
// configuration file config unless it is empty, and waits until it is healthy.
func startServer(config string) (*serverProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve"}
	if config != "" {
		args = append(args, "--config", config)
	}
	server := &serverProcess{
		address: fmt.Sprintf("127.0.0.1:%d", port),
		cmd:     exec.Command(llmrouterBin(), args...),
		exited:  make(chan struct{}),
	}
	server.cmd.Env = append(os.Environ(),
		"LLMROUTER_SERVER__HOST=127.0.0.1", fmt.Sprintf("LLMROUTER_SERVER__PORT=%d", port),
		// A small window: a generation whose caller holds back its credits
		// stops a few events ahead and stays RUNNING for as long as a test
		// needs it to, whatever the machine's speed.
		"LLMROUTER_STREAMS__WINDOW_EVENTS=4")
	server.cmd.Stdout, server.cmd.Stderr = &server.logs, &server.logs
	stopWithParent(server.cmd)
	if err := server.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = server.cmd.Wait(); close(server.exited) }()
	if err := server.waitHealthy(60 * time.Second); err != nil {
		_ = server.cmd.Process.Kill()
		<-server.exited
		return nil, fmt.Errorf("%w\n%s", err, server.logs.String())
	}
	return server, nil
}

// waitHealthy polls `llmrouter health` until it exits 0.
func (s *serverProcess) waitHealthy(limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		select {
		case <-s.exited:
			return errors.New("llmrouter serve exited before it was healthy")
		default:
		}
		if exec.Command(llmrouterBin(), "health", "--address", s.address).Run() == nil {
			return nil
		}
	}
	return fmt.Errorf("llmrouter serve was not healthy on %s within %v", s.address, limit)
}

// stop sends SIGTERM and expects a clean exit within 15 s.
func (s *serverProcess) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.exited:
		if !s.cmd.ProcessState.Success() {
			return fmt.Errorf("llmrouter serve ended with %v\n%s", s.cmd.ProcessState, s.logs.String())
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		return errors.New("llmrouter serve did not stop within 15 s of SIGTERM")
	}
}

func freePort() (int, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port, nil
}
