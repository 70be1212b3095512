package llmrouter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
)

// WithAPIKey sends key as "authorization: Bearer <key>" metadata on every
// call the client makes, RPC() included, over TLS and over plaintext alike. A
// server that does not know the key answers UNAUTHENTICATED, one whose role
// for it does not allow a call PERMISSION_DENIED. New fails when the key is
// empty or not printable ASCII without spaces; the error leaves the key out.
func WithAPIKey(key string) Option {
	return func(s *settings) {
		s.apiKey = &key
	}
}

// WithTLS makes the connection use TLS configured by config: RootCAs are the
// roots the server's certificate must chain to (nil trusts the system's),
// Certificates the client certificate for mutual TLS, ServerName the name the
// server's certificate must carry when it is not the target's host. A nil
// config trusts the system's roots and presents no certificate. LoadTLS makes
// a config from PEM files. Dial options given with WithDialOptions come after
// it and may replace it.
func WithTLS(config *tls.Config) Option {
	return func(s *settings) {
		if config == nil {
			config = &tls.Config{}
		}
		s.tls = config
	}
}

// TLSFiles names the PEM files of a TLS configuration for LoadTLS.
type TLSFiles struct {
	// CA holds the root certificates the server's certificate must chain to;
	// empty trusts the system's roots.
	CA string
	// Cert holds the client certificate chain for mutual TLS; it needs Key.
	Cert string
	// Key holds the private key of Cert.
	Key string
	// ServerName is the name the server's certificate must carry, when it is
	// not the target's host; it is also sent as SNI.
	ServerName string
}

// LoadTLS reads the files into a configuration for WithTLS.
func LoadTLS(files TLSFiles) (*tls.Config, error) {
	config := &tls.Config{ServerName: files.ServerName, MinVersion: tls.VersionTLS12}
	if files.CA != "" {
		pem, err := os.ReadFile(files.CA)
		if err != nil {
			return nil, fmt.Errorf("llmrouter: reading the CA file: %w", err)
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("llmrouter: the CA file %s holds no PEM certificate", files.CA)
		}
	}
	if (files.Cert == "") != (files.Key == "") {
		return nil, errors.New("llmrouter: TLS needs both Cert and Key (mutual TLS), or neither")
	}
	if files.Cert != "" {
		certificate, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			return nil, fmt.Errorf("llmrouter: loading the client certificate: %w", err)
		}
		config.Certificates = []tls.Certificate{certificate}
	}
	return config, nil
}

// bearerKey sends an API key as per-RPC credentials. It does not ask for
// transport security, so grpc sends it over plaintext too, as the server on
// loopback may be.
type bearerKey string

func newBearerKey(key string) (bearerKey, error) {
	if key == "" {
		return "", errors.New("llmrouter: the API key is empty")
	}
	for _, char := range key {
		if char < '!' || char > '~' {
			return "", errors.New("llmrouter: the API key must be printable ASCII without spaces or newlines")
		}
	}
	return bearerKey("Bearer " + key), nil
}

// GetRequestMetadata returns the authorization metadata.
func (k bearerKey) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": string(k)}, nil
}

// RequireTransportSecurity is false: the key goes over plaintext too.
func (bearerKey) RequireTransportSecurity() bool {
	return false
}

// String leaves the key out of anything that prints the credentials.
func (bearerKey) String() string {
	return "bearerKey(...)"
}

var _ credentials.PerRPCCredentials = bearerKey("")
