package httpserver_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/cart-cqrs/cart/pkg/httpserver"
)

func TestListenDebug_OffWithoutAddress(t *testing.T) {
	srv, err := httpserver.ListenDebug("", slog.New(slog.DiscardHandler))
	if srv != nil || err != nil {
		t.Fatalf("ListenDebug(\"\") = %v, %v; want nil, nil", srv, err)
	}
}

func TestListenDebug_ServesTheProfiler(t *testing.T) {
	srv, err := httpserver.ListenDebug("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
		"/debug/pprof/cmdline":           "",
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+srv.Addr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, body := mustDo(t, req)
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d, %.80q; want 200 containing %q", path, res.StatusCode, body, want)
		}
	}
}
