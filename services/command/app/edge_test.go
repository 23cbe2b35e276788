package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/services/command/app"
)

var commandRoutes = []string{
	"/v1/carts", "/v1/carts/c1/add-item", "/v1/carts/c1/remove-item",
	"/v1/carts/c1/change-quantity", "/v1/carts/c1/checkout",
}

const shop = "https://shop.example.com"

// TestEdge: the service's HTTP edge, on every command route: broken
// framing is the client's 400 and writes nothing, a wrong method is 405
// with Allow, and a preflight from an allowed origin is answered before
// authentication.
func TestEdge(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.RelayEnabled = false
	cfg.Limits = httpserver.Limits{CORSAllowedOrigins: []string{shop}}
	a := mustRun(t, cfg)
	base := "http://" + a.Addr()
	tok := token(t, cfg, "edge")

	t.Run("BrokenFramingIs400", func(t *testing.T) {
		for _, route := range commandRoutes {
			for name, framing := range map[string]string{
				"ChunkSizeNotHex":    "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
				"ChunkCRLFMissing":   "Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
				"ContentLengthShort": "Content-Length: 40\r\n\r\n{}",
			} {
				raw := "POST " + route + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
					"\r\nContent-Type: application/json\r\n" + framing
				status, code := rawProblem(t, a.Addr(), raw)
				if status != http.StatusBadRequest || code != "malformed-body" {
					t.Errorf("%s %s: %d %s, want 400 malformed-body", route, name, status, code)
				}
			}
		}
		if n := countEvents(t, cfg); n != 0 {
			t.Errorf("%d events stored from refused requests", n)
		}
	})

	t.Run("WrongMethodIs405", func(t *testing.T) {
		for _, route := range commandRoutes {
			req, _ := http.NewRequest(http.MethodGet, base+route, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
				t.Errorf("GET %s: %d Allow %q, want 405 Allow POST", route, res.StatusCode, res.Header.Get("Allow"))
			}
		}
	})

	t.Run("Preflight", func(t *testing.T) {
		for _, route := range commandRoutes {
			for origin, allowed := range map[string]bool{shop: true, "https://evil.example.com": false} {
				req, _ := http.NewRequest(http.MethodOptions, base+route, nil)
				req.Header.Set("Origin", origin)
				req.Header.Set("Access-Control-Request-Method", http.MethodPost)
				req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,idempotency-key")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				acao := res.Header.Get("Access-Control-Allow-Origin")
				switch {
				case allowed && (res.StatusCode != http.StatusNoContent || acao != shop):
					t.Errorf("preflight %s from %s: %d, Allow-Origin %q; want 204 and the origin", route, origin, res.StatusCode, acao)
				case !allowed && (acao != "" || res.Header.Get("Access-Control-Allow-Methods") != ""):
					t.Errorf("preflight %s from %s: CORS headers %v", route, origin, res.Header)
				}
			}
		}
	})
}

// rawProblem writes raw, half-closes, and returns the status and problem
// code of the answer.
func rawProblem(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", strings.SplitN(raw, "\r\n", 2)[0], err)
	}
	defer res.Body.Close()
	var p struct {
		Code string `json:"code"`
	}
	_ = json.NewDecoder(res.Body).Decode(&p)
	return res.StatusCode, p.Code
}

func token(t *testing.T, cfg app.Config, customer string) string {
	t.Helper()
	tok, err := auth.Issue(cfg.Auth, customer, "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func countEvents(t *testing.T, cfg app.Config) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
