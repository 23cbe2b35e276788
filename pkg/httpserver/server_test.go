package httpserver_test

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/httpserver"
)

func TestDefaultTimeouts(t *testing.T) {
	d := httpserver.DefaultTimeouts
	if d.ReadHeader <= 0 || d.ReadHeader > 10*time.Second || d.Idle <= 0 || d.Read <= 0 || d.Write <= 0 {
		t.Errorf("DefaultTimeouts = %+v: every timeout must be set, read-header short", d)
	}
}

// timeoutServer serves the shared stack with short timeouts so that the
// tests below see the server hang up instead of waiting minutes.
func timeoutServer(t *testing.T) string {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	e := httpserver.NewEcho(logger, reg, "test")
	httpserver.Health(e, nil)
	return MustRun(t, e, logger, httpserver.WithTimeouts(httpserver.Timeouts{ReadHeader: 200 * time.Millisecond, Idle: 200 * time.Millisecond}))
}

// mustHangUp reads until the server closes conn; the read deadline only
// keeps a broken server from hanging the test.
func mustHangUp(t *testing.T, conn net.Conn, r io.Reader) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, r)
	if ne := net.Error(nil); errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open: %v", err)
	}
}

func TestListen_ReadHeaderTimeout(t *testing.T) {
	addr := timeoutServer(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A slow client that never finishes its headers (slowloris).
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: test\r\n"); err != nil {
		t.Fatal(err)
	}
	mustHangUp(t, conn, conn)
}

func TestListen_IdleTimeout(t *testing.T) {
	addr := timeoutServer(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("status %d, close %v: want a kept-alive 200", res.StatusCode, res.Close)
	}
	// The kept-alive connection, left idle, is closed by the server.
	mustHangUp(t, conn, br)
}

func TestListen_HeaderTooLarge(t *testing.T) {
	s := MustServe(t, nil)
	req, err := http.NewRequest(http.MethodGet, s.URL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Pad", strings.Repeat("x", httpserver.MaxHeaderBytes+8<<10))
	res, _ := mustDo(t, req)
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status = %d, want 431", res.StatusCode)
	}
}
