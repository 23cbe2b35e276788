// Package testserver resolves, once per test binary, the server that a test
// helper (pgtest, redistest) hands out slices of: the URL in the service's
// environment variable, else the local default address if it answers, else a
// testcontainers container when a Docker engine answers. Without any of them
// tests are skipped, or fail when CI=true.
package testserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// Spec says how to find and start one kind of server.
type Spec struct {
	Helper     string // the helper package, for messages: "pgtest"
	Name       string // the server, for messages: "PostgreSQL"
	EnvVar     string // "DATABASE_URL"
	DefaultURL string
	// Ping reports whether a server answers at url.
	Ping func(ctx context.Context, url string) error
	// Start runs a container (it lives as long as the test binary: Ryuk
	// removes it when the binary exits) and returns its URL.
	Start func(ctx context.Context) (string, error)
}

// Server is one resolved server; its zero value is not usable, see New.
type Server struct {
	spec Spec
	once sync.Once
	url  string
	skip string // why there is no server (skip, or fail when CI=true)
	err  error  // a server was expected but could not be had: always fatal
}

// New returns a Server resolved on first use.
func New(spec Spec) *Server { return &Server{spec: spec} }

// Must returns the server's URL, or skips (fails when CI=true) the test when
// there is none.
func (s *Server) Must(tb testing.TB) string {
	tb.Helper()
	s.once.Do(func() { s.url, s.skip, s.err = s.resolve() })
	switch {
	case s.err != nil:
		tb.Fatalf("%s: %v", s.spec.Helper, s.err)
	case s.skip != "":
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s: no %s for tests (CI=true, so this is an error): %s", s.spec.Helper, s.spec.Name, s.skip)
		}
		tb.Skipf("%s: no %s for tests: %s", s.spec.Helper, s.spec.Name, s.skip)
	}
	return s.url
}

func (s *Server) resolve() (url, skip string, err error) {
	if u := os.Getenv(s.spec.EnvVar); u != "" {
		return u, "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	pingErr := s.spec.Ping(ctx, s.spec.DefaultURL)
	cancel()
	if pingErr == nil {
		return s.spec.DefaultURL, "", nil
	}
	if dockerErr := dockerHealthy(5 * time.Second); dockerErr != nil {
		return "", fmt.Sprintf("%s is unset, %s does not answer (%v) and no Docker engine answers (%v)",
			s.spec.EnvVar, s.spec.DefaultURL, pingErr, dockerErr), nil
	}
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	u, err := s.spec.Start(ctx)
	if err != nil {
		return "", "", fmt.Errorf("start %s container: %w", s.spec.Name, err)
	}
	return u, "", nil
}

// dockerHealthy reports whether a Docker engine answers. testcontainers may
// panic when no engine is configured at all, hence the recover.
func dockerHealthy(timeout time.Duration) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers: %v", r)
		}
	}()
	provider, err := testcontainers.ProviderDocker.GetProvider()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return provider.Health(ctx) // Health closes the provider
}

// RandomHex returns n random bytes as hex, for unique names.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
