package httpserver_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// MustServeCommands serves the shared stack with one command-like route
// that binds a JSON body; decided counts the requests that reached it.
func MustServeCommands(tb testing.TB, opts ...httpserver.ListenOption) (addr string, decided *atomic.Int64) {
	tb.Helper()
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	e := httpserver.NewEcho(logger, reg, "test")
	httpserver.Health(e, nil)
	decided = &atomic.Int64{}
	e.POST("/v1/carts/:cartId/add-item", func(c echo.Context) error {
		var v map[string]any
		if err := c.Bind(&v); err != nil {
			return err
		}
		decided.Add(1)
		return c.JSON(http.StatusOK, v)
	})
	return MustRun(tb, e, logger, opts...), decided
}

// sendRaw writes raw to addr and half-closes; the caller reads the answers
// (within 10 s) and closes the connection.
func sendRaw(tb testing.TB, addr, raw string) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	err = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err == nil {
		_, err = io.WriteString(conn, raw)
	}
	if err == nil {
		err = conn.(*net.TCPConn).CloseWrite()
	}
	if err != nil {
		_ = conn.Close()
		tb.Fatal(err)
	}
	return conn
}

// rawExchange writes raw to addr, half-closes, and reads one response.
func rawExchange(tb testing.TB, addr, raw string) (*http.Response, []byte) {
	tb.Helper()
	conn := sendRaw(tb, addr, raw)
	defer conn.Close()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("no response to %q: %v", raw, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("read response body: %v", err)
	}
	return res, body
}

const addItem = "POST /v1/carts/c1/add-item HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

func TestBrokenFraming(t *testing.T) {
	addr, decided := MustServeCommands(t)
	for name, raw := range map[string]string{
		"ChunkSizeNotHex":          addItem + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
		"ChunkSizeNegative":        addItem + "Transfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n",
		"ChunkSizeOver64Bits":      addItem + "Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n{}\r\n0\r\n\r\n",
		"ChunkCRLFMissing":         addItem + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
		"ChunkShorterThanPromised": addItem + "Transfer-Encoding: chunked\r\n\r\n10\r\n{}",
		"NoLastChunk":              addItem + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",
		"ContentLengthShort":       addItem + "Content-Length: 40\r\n\r\n{\"productId\":\"1\"}",
	} {
		t.Run(name, func(t *testing.T) {
			before := decided.Load()
			res, body := rawExchange(t, addr, raw)
			p := mustProblem(t, res, body, http.StatusBadRequest, "malformed-body")
			if p.Type != problem.TypeBase+"malformed-body" {
				t.Errorf("type = %q", p.Type)
			}
			if got := decided.Load(); got != before {
				t.Errorf("the handler decided on a body it never got whole")
			}
		})
	}
	t.Run("WellFormedChunked", func(t *testing.T) {
		res, body := rawExchange(t, addr, addItem+"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status = %d: %s", res.StatusCode, body)
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil || v["a"] != 1.0 {
			t.Errorf("body = %s (%v), want the chunks joined", body, err)
		}
	})
	t.Run("TooLargeStays413", func(t *testing.T) {
		chunk := strings.Repeat("a", 70<<10)
		res, body := rawExchange(t, addr, addItem+"Transfer-Encoding: chunked\r\n\r\n11800\r\n"+chunk+"\r\n0\r\n\r\n")
		mustProblem(t, res, body, http.StatusRequestEntityTooLarge, "body-too-large")
	})
}

// FuzzRawRequest writes any bytes as a request to a live server: whatever
// they are, the server answers below 500 or hangs up, and does so promptly.
// `go test` runs the seeds; `go test -fuzz FuzzRawRequest` explores.
func FuzzRawRequest(f *testing.F) {
	for _, seed := range []string{
		addItem + "Content-Length: 2\r\n\r\n{}",
		addItem + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
		addItem + "Transfer-Encoding: chunked\r\n\r\n-1\r\n{}\r\n0\r\n\r\n",
		addItem + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
		addItem + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}0\r\n\r\n",
		addItem + "Transfer-Encoding: chunked\r\n\r\n2;ext=1\r\n{}\r\n0\r\nTrailer: x\r\n\r\n",
		addItem + "Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		addItem + "Content-Length: 99\r\n\r\n{}",
		addItem + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
		addItem + "Content-Length: -1\r\n\r\n{}",
		addItem + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /healthz HTTP/1.0\r\n\r\n",
		"PATCH /v1/carts/c1/add-item HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x00\x01\x02",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nxGET /healthz HTTP/1.1\r\n\r\n",
	} {
		f.Add(seed)
	}
	addr, _ := MustServeCommands(f, httpserver.WithTimeouts(httpserver.Timeouts{ReadHeader: time.Second, Read: 2 * time.Second}))
	f.Fuzz(func(t *testing.T, raw string) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// The server's own timeouts end any request within seconds; the
		// deadline here only turns a hang into a failure.
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, raw); err != nil {
			return // the server hung up early: fine
		}
		_ = conn.(*net.TCPConn).CloseWrite()
		r := bufio.NewReader(conn)
		for {
			res, err := http.ReadResponse(r, nil)
			if err != nil {
				if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("the server neither answered nor hung up on %q", raw)
				}
				return // hung up
			}
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			// Before our stack runs, net/http answers a transfer coding
			// (gzip, chunked) or a version (HTTP/0.0) it does not implement
			// with 501 or 505, as RFC 9110/9112 ask; our stack never does.
			protocol := res.Header.Get(echo.HeaderXRequestID) == "" &&
				(res.StatusCode == http.StatusNotImplemented || res.StatusCode == http.StatusHTTPVersionNotSupported)
			if res.StatusCode >= 500 && !protocol {
				t.Fatalf("%q: status %d", raw, res.StatusCode)
			}
			if err != nil {
				return
			}
		}
	})
}

func TestAmbiguousHeaders(t *testing.T) {
	addr, decided := MustServeCommands(t)
	t.Run("TwoAuthorizationHeaders", func(t *testing.T) {
		res, body := rawExchange(t, addr, addItem+"Authorization: Bearer a\r\nAuthorization: Bearer b\r\nContent-Length: 2\r\n\r\n{}")
		mustProblem(t, res, body, http.StatusBadRequest, "malformed-request")
		if decided.Load() != 0 {
			t.Error("the handler ran")
		}
	})
	t.Run("OneAuthorizationHeader", func(t *testing.T) {
		res, body := rawExchange(t, addr, addItem+"Authorization: Bearer a\r\nContent-Length: 2\r\n\r\n{}")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status = %d: %s", res.StatusCode, body)
		}
	})
}

// TestContentLengthWithTransferEncoding: a request framed both ways is 400,
// and the connection closes after the answer, so the bytes a proxy would
// have read as a second request are never served.
func TestContentLengthWithTransferEncoding(t *testing.T) {
	addr, decided := MustServeCommands(t)
	smuggled := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	for name, raw := range map[string]string{
		"LengthFirst":   addItem + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + smuggled,
		"EncodingFirst": addItem + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + smuggled,
		"BareLF":        strings.ReplaceAll(addItem, "\r\n", "\n") + "transfer-encoding: chunked\ncontent-length: 4\n\n2\r\n{}\r\n0\r\n\r\n" + smuggled,
		// After a well-framed request on the same connection.
		"Second": addItem + "Content-Length: 2\r\n\r\n{}" + addItem + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + smuggled,
		"AfterChunked": addItem + "Transfer-Encoding: chunked\r\n\r\n1;x=y\r\n{\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n" +
			addItem + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + smuggled,
	} {
		t.Run(name, func(t *testing.T) {
			before := decided.Load()
			statuses := rawExchangeAll(t, addr, raw)
			want := []int{http.StatusBadRequest}
			if name == "Second" || name == "AfterChunked" {
				want = []int{http.StatusOK, http.StatusBadRequest}
			}
			if !slices.Equal(statuses, want) {
				t.Errorf("statuses = %v, want %v (and no answer to the smuggled request)", statuses, want)
			}
			if got := decided.Load() - before; got != int64(len(want)-1) {
				t.Errorf("the handler decided %d times, want %d", got, len(want)-1)
			}
		})
	}
	t.Run("KeepAliveUnaffected", func(t *testing.T) {
		raw := addItem + "Content-Length: 2\r\n\r\n{}" + addItem + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + smuggled
		if got := rawExchangeAll(t, addr, raw); !slices.Equal(got, []int{200, 200, 200}) {
			t.Errorf("statuses = %v, want three 200s", got)
		}
	})
}

// rawExchangeAll writes raw, half-closes, and returns the status of every
// response until the server hangs up.
func rawExchangeAll(tb testing.TB, addr, raw string) []int {
	tb.Helper()
	conn := sendRaw(tb, addr, raw)
	defer conn.Close()
	r := bufio.NewReader(conn)
	var statuses []int
	for {
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			return statuses
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
	}
}
