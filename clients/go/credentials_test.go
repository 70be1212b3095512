package llmrouter_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	llmrouter "github.com/llmrouter/llmrouter/clients/go"
	llmrouterv1 "github.com/llmrouter/llmrouter/clients/go/gen/llmrouter/v1"
)

// The server side of authentication is not wired yet, so these tests run
// against a recording server that stands in for it: it records the
// authorization metadata and the TLS peer of every call and can refuse calls
// with a status, as the real server's auth interceptor will. The certificates
// come from a throwaway authority made per test.

const apiKey = "k-3f9a"

// call is what one call carried.
type call struct {
	method        string
	authorization []string
	// security is "tls" or "insecure"; names are the client certificate's common names.
	security string
	names    []string
}

// recordingServer answers ListModels and Generate and records every call.
type recordingServer struct {
	llmrouterv1.UnimplementedRouterServiceServer

	mu    sync.Mutex
	calls []call
	// refusal, when set, ends every call after it is recorded.
	refusal error
}

func (s *recordingServer) record(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	recorded := call{method: method[strings.LastIndex(method, "/")+1:], authorization: md.Get("authorization"), security: "insecure"}
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			recorded.security = "tls"
			for _, cert := range info.State.PeerCertificates {
				recorded.names = append(recorded.names, cert.Subject.CommonName)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, recorded)
	return s.refusal
}

func (s *recordingServer) recorded() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *recordingServer) ListModels(context.Context, *llmrouterv1.ListModelsRequest) (*llmrouterv1.ListModelsResponse, error) {
	return &llmrouterv1.ListModelsResponse{Routes: []*llmrouterv1.Route{{Name: "fake", IsDefault: true}}}, nil
}

func (s *recordingServer) Generate(stream grpc.BidiStreamingServer[llmrouterv1.GenerateRequest, llmrouterv1.GenerateResponse]) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	events := []*llmrouterv1.StreamEvent{
		{Kind: &llmrouterv1.StreamEvent_Chunk{Chunk: &llmrouterv1.Chunk{Text: "hi"}}},
		{Offset: 1, Kind: &llmrouterv1.StreamEvent_Completed{Completed: &llmrouterv1.Completed{FinishReason: llmrouterv1.FinishReason_FINISH_REASON_STOP}}},
	}
	for _, event := range events {
		if err := stream.Send(&llmrouterv1.GenerateResponse{Event: event}); err != nil {
			return err
		}
	}
	return nil
}

// serveRecording serves fake on a loopback port with creds (nil: plaintext)
// until the test ends, and returns its address.
func serveRecording(t *testing.T, fake *recordingServer, creds credentials.TransportCredentials) string {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer(
		grpc.Creds(creds),
		grpc.UnaryInterceptor(func(ctx context.Context, request any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if err := fake.record(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return handler(ctx, request)
		}),
		grpc.StreamInterceptor(func(service any, stream grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := fake.record(stream.Context(), info.FullMethod); err != nil {
				return err
			}
			return handler(service, stream)
		}),
	)
	llmrouterv1.RegisterRouterServiceServer(server, fake)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}

// authority is a throwaway certificate authority.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newAuthority(t *testing.T, name string) *authority {
	t.Helper()
	key := newKey(t)
	template := certificateTemplate(name)
	template.IsCA, template.BasicConstraintsValid = true, true
	template.KeyUsage = x509.KeyUsageCertSign
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for servers and clients alike, and its key, both PEM.
func (a *authority) issue(t *testing.T, commonName string, dnsNames []string, ips []net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	template := certificateTemplate(commonName)
	template.DNSNames, template.IPAddresses = dnsNames, ips
	template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	template.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, template, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func certificateTemplate(commonName string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-5 * time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
}

// serverTLS is the server side: its certificate, and with clientCA, mutual TLS.
func serverTLS(t *testing.T, certPEM, keyPEM []byte, clientCA *authority) credentials.TransportCredentials {
	t.Helper()
	certificate, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	config := &tls.Config{Certificates: []tls.Certificate{certificate}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		config.ClientCAs = x509.NewCertPool()
		config.ClientCAs.AddCert(clientCA.cert)
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(config)
}

// writeFiles writes each name's data to a file in a temporary folder and returns the paths.
func writeFiles(t *testing.T, files map[string][]byte) map[string]string {
	t.Helper()
	dir, paths := t.TempDir(), map[string]string{}
	for name, data := range files {
		paths[name] = filepath.Join(dir, name)
		if err := os.WriteFile(paths[name], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// listAndGenerate makes a unary and a streaming call; it returns the first error.
func listAndGenerate(t *testing.T, target string, options ...llmrouter.Option) error {
	t.Helper()
	client, err := llmrouter.New(target, options...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.ListModels(ctx); err != nil {
		return err
	}
	generation, err := client.Generate(ctx, &llmrouterv1.StartGeneration{Prompt: "hi"})
	if err != nil {
		return err
	}
	text, _, err := generation.Wait()
	if err == nil && text != "hi" {
		t.Fatalf("text = %q, want %q", text, "hi")
	}
	return err
}

// summaries are the calls as "method authorization security names" lines.
func summaries(calls []call) []string {
	var lines []string
	for _, c := range calls {
		lines = append(lines, c.method+" "+strings.Join(c.authorization, ",")+" "+c.security+" "+strings.Join(c.names, ","))
	}
	return lines
}

func TestAPIKeyGoesWithUnaryAndStreamingCalls(t *testing.T) {
	fake := &recordingServer{}
	address := serveRecording(t, fake, nil)

	if err := listAndGenerate(t, address, llmrouter.WithAPIKey(apiKey)); err != nil {
		t.Fatal(err)
	}

	want := []string{"ListModels Bearer " + apiKey + " insecure ", "Generate Bearer " + apiKey + " insecure "}
	if got := summaries(fake.recorded()); !slices.Equal(got, want) {
		t.Fatalf("calls = %q, want %q", got, want)
	}
}

func TestWithoutAPIKeyNoAuthorizationIsSent(t *testing.T) {
	fake := &recordingServer{}
	address := serveRecording(t, fake, nil)

	if err := listAndGenerate(t, address); err != nil {
		t.Fatal(err)
	}

	want := []string{"ListModels  insecure ", "Generate  insecure "}
	if got := summaries(fake.recorded()); !slices.Equal(got, want) {
		t.Fatalf("calls = %q, want %q", got, want)
	}
}

func TestARefusedKeyIsAnErrorWithItsCode(t *testing.T) {
	for _, code := range []codes.Code{codes.Unauthenticated, codes.PermissionDenied} {
		t.Run(code.String(), func(t *testing.T) {
			fake := &recordingServer{refusal: status.Error(code, "the key is not allowed")}
			client, err := llmrouter.New(serveRecording(t, fake, nil), llmrouter.WithAPIKey(apiKey))
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			_, unaryErr := client.ListModels(ctx)
			generation, err := client.Generate(ctx, &llmrouterv1.StartGeneration{Prompt: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			_, _, streamErr := generation.Wait()

			for _, err := range []error{unaryErr, streamErr} {
				var failure *llmrouter.Error
				if !errors.As(err, &failure) || failure.Code != code || failure.Message != "the key is not allowed" {
					t.Fatalf("error = %v, want %v: the key is not allowed", err, code)
				}
			}
		})
	}
}

func TestTLSWithTheAuthorityAsRoot(t *testing.T) {
	ca := newAuthority(t, "llmrouter test CA")
	certPEM, keyPEM := ca.issue(t, "llmrouter server", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	fake := &recordingServer{}
	address := serveRecording(t, fake, serverTLS(t, certPEM, keyPEM, nil))
	config, err := llmrouter.LoadTLS(llmrouter.TLSFiles{CA: writeFiles(t, map[string][]byte{"ca.pem": ca.pem})["ca.pem"]})
	if err != nil {
		t.Fatal(err)
	}

	if err := listAndGenerate(t, address, llmrouter.WithTLS(config), llmrouter.WithAPIKey(apiKey)); err != nil {
		t.Fatal(err)
	}

	want := []string{"ListModels Bearer " + apiKey + " tls ", "Generate Bearer " + apiKey + " tls "}
	if got := summaries(fake.recorded()); !slices.Equal(got, want) {
		t.Fatalf("calls = %q, want %q", got, want)
	}
}

func TestMutualTLSPresentsTheClientCertificate(t *testing.T) {
	ca := newAuthority(t, "llmrouter test CA")
	serverCert, serverKey := ca.issue(t, "llmrouter server", nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	clientCert, clientKey := ca.issue(t, "client-7", nil, nil)
	fake := &recordingServer{}
	address := serveRecording(t, fake, serverTLS(t, serverCert, serverKey, ca))
	paths := writeFiles(t, map[string][]byte{"ca.pem": ca.pem, "cert.pem": clientCert, "key.pem": clientKey})
	withCert, err := llmrouter.LoadTLS(llmrouter.TLSFiles{CA: paths["ca.pem"], Cert: paths["cert.pem"], Key: paths["key.pem"]})
	if err != nil {
		t.Fatal(err)
	}
	withoutCert, err := llmrouter.LoadTLS(llmrouter.TLSFiles{CA: paths["ca.pem"]})
	if err != nil {
		t.Fatal(err)
	}

	refused := listAndGenerate(t, address, llmrouter.WithTLS(withoutCert))
	accepted := listAndGenerate(t, address, llmrouter.WithTLS(withCert))

	if status.Code(refused) != codes.Unavailable {
		t.Fatalf("without a client certificate: %v, want UNAVAILABLE", refused)
	}
	if accepted != nil {
		t.Fatal(accepted)
	}
	want := []string{"ListModels  tls client-7", "Generate  tls client-7"}
	if got := summaries(fake.recorded()); !slices.Equal(got, want) {
		t.Fatalf("calls = %q, want %q", got, want)
	}
}

func TestAServerFromAnotherAuthorityIsNotTrusted(t *testing.T) {
	ca, other := newAuthority(t, "llmrouter test CA"), newAuthority(t, "another CA")
	certPEM, keyPEM := ca.issue(t, "llmrouter server", nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	fake := &recordingServer{}
	address := serveRecording(t, fake, serverTLS(t, certPEM, keyPEM, nil))
	roots := x509.NewCertPool()
	roots.AddCert(other.cert)

	err := listAndGenerate(t, address, llmrouter.WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))

	if status.Code(err) != codes.Unavailable || len(fake.recorded()) != 0 {
		t.Fatalf("error = %v after %d calls, want UNAVAILABLE before any", err, len(fake.recorded()))
	}
}

func TestServerNameNamesTheHostTheCertificateMustCarry(t *testing.T) {
	ca := newAuthority(t, "llmrouter test CA")
	certPEM, keyPEM := ca.issue(t, "llmrouter server", []string{"router.internal"}, nil)
	fake := &recordingServer{}
	address := serveRecording(t, fake, serverTLS(t, certPEM, keyPEM, nil))
	caFile := writeFiles(t, map[string][]byte{"ca.pem": ca.pem})["ca.pem"]
	unnamed, err := llmrouter.LoadTLS(llmrouter.TLSFiles{CA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	named, err := llmrouter.LoadTLS(llmrouter.TLSFiles{CA: caFile, ServerName: "router.internal"})
	if err != nil {
		t.Fatal(err)
	}

	refused := listAndGenerate(t, address, llmrouter.WithTLS(unnamed))
	accepted := listAndGenerate(t, address, llmrouter.WithTLS(named))

	if status.Code(refused) != codes.Unavailable || accepted != nil {
		t.Fatalf("without the name: %v (want UNAVAILABLE); with it: %v", refused, accepted)
	}
}

func TestAKeyThatCannotBeMetadataIsRefusedWithoutShowingIt(t *testing.T) {
	for _, key := range []string{"", "two words", "trailing-newline\n", "café"} {
		_, err := llmrouter.New("127.0.0.1:1", llmrouter.WithAPIKey(key))
		if err == nil {
			t.Fatalf("New accepted the key %q", key)
		}
		if trimmed := strings.TrimSpace(key); trimmed != "" && strings.Contains(err.Error(), trimmed) {
			t.Fatalf("the error shows the key: %v", err)
		}
	}
}

func TestWithConnTakesNoKeyOrTLS(t *testing.T) {
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for name, option := range map[string]llmrouter.Option{"WithAPIKey": llmrouter.WithAPIKey(apiKey), "WithTLS": llmrouter.WithTLS(nil)} {
		if _, err := llmrouter.New("", llmrouter.WithConn(conn), option); err == nil {
			t.Fatalf("New accepted WithConn and %s", name)
		}
	}
}

func TestLoadTLSRefusesHalfAKeyPairAndNonPEM(t *testing.T) {
	paths := writeFiles(t, map[string][]byte{"cert.pem": []byte("x"), "text": []byte("plain text")})
	for name, files := range map[string]llmrouter.TLSFiles{
		"cert without key": {Cert: paths["cert.pem"]},
		"key without cert": {Key: paths["cert.pem"]},
		"CA not PEM":       {CA: paths["text"]},
		"CA missing":       {CA: paths["text"] + ".missing"},
	} {
		if _, err := llmrouter.LoadTLS(files); err == nil {
			t.Fatalf("%s: LoadTLS succeeded", name)
		}
	}
}
