package llmrouter_test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy relays loopback TCP connections to the test server, so a test can
// drop every connection at once, as a failing network or a restarting load
// balancer does, while new connections still get through.
type proxy struct {
	listener net.Listener
	target   string

	mu       sync.Mutex
	open     []net.Conn
	accepted int
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{listener: listener, target: target}
	go p.serve()
	t.Cleanup(func() {
		_ = listener.Close()
		p.drop()
	})
	return p
}

// address is where clients connect.
func (p *proxy) address() string {
	return p.listener.Addr().String()
}

// connections is how many connections the proxy has accepted so far.
func (p *proxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// drop closes every relayed connection, on both sides.
func (p *proxy) drop() {
	p.mu.Lock()
	open := p.open
	p.open = nil
	p.mu.Unlock()
	for _, conn := range open {
		_ = conn.Close()
	}
}

func (p *proxy) serve() {
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.open = append(p.open, client, server)
		p.accepted++
		p.mu.Unlock()
		go relay(client, server)
		go relay(server, client)
	}
}

// relay copies until either side ends, then closes both.
func relay(to, from net.Conn) {
	_, _ = io.Copy(to, from)
	_ = to.Close()
	_ = from.Close()
}
