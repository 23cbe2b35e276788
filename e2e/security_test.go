package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/cart-cqrs/cart/pkg/problem"
)

// call sends a request exactly as given (headers, raw body) through the
// client that checks answers against the OpenAPI documents. It does not call
// tb.Fatal, so goroutines may use it.
func call(method, target string, h http.Header, body io.Reader) (reply, error) {
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return reply{}, err
	}
	maps.Copy(req.Header, h)
	resp, err := clientFor(req.URL.Host).Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read body: %w", method, target, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// hdr is a bearer token (none when tok is "") plus header name/value pairs.
func hdr(tok string, kv ...string) http.Header {
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func jsonBody(v any) io.Reader {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return bytes.NewReader(b)
}

// problemOf checks that r is an RFC 9457 body of status (any 4xx when 0)
// and code (any when ""), and returns it.
func problemOf(t *testing.T, r reply, status int, code string) problem.Body {
	t.Helper()
	var b problem.Body
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, problem.ContentType) {
		t.Errorf("status %d, Content-Type %q, want %s: %s", r.Status, ct, problem.ContentType, r.Body)
	} else if err := json.Unmarshal(r.Body, &b); err != nil || b.Status != r.Status {
		t.Errorf("problem body %s (%v) for status %d", r.Body, err, r.Status)
	}
	if (status == 0 && r.Status/100 != 4) || (status != 0 && r.Status != status) || (code != "" && b.Code != code) {
		t.Errorf("got %d %q, want %d %q (0: any 4xx): %s", r.Status, b.Code, status, code, r.Body)
	}
	return b
}

// eventCount counts the events of the given carts (of all carts when none).
func (s *system) eventCount(tb testing.TB, cartIDs ...string) int {
	tb.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM events WHERE cardinality($1::text[]) = 0 OR stream_id::text = ANY($1::text[])`,
		cartIDs).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// ownerView is what the owner sees of their carts and what PostgreSQL holds:
// after a refused request it must be byte for byte the same.
func (s *system) ownerView(t *testing.T, tok string, cartIDs []string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "events total=%d owner=%d\n", s.eventCount(t), s.eventCount(t, cartIDs...))
	for _, id := range cartIDs {
		for _, path := range []string{"/v1/carts/" + id, "/v1/carts/" + id + "/history"} {
			r := do(t, http.MethodGet, s.queryURL+path, tok, nil)
			fmt.Fprintf(&b, "%s %d %s %s\n", path, r.Status, r.Header.Get("ETag"), r.Body)
		}
	}
	return b.String()
}

// secCart is one of the victim's carts and what the victim already did to it.
type secCart struct {
	state, id string
	version   int
	key       string // an Idempotency-Key the owner used on add-item
	keyBody   any    // with this body
}

// ownerOpenKey is the Idempotency-Key the owner opened their open cart with;
// the attackers open their own carts with it too.
const ownerOpenKey = "victim-open-key"

// TestSecurityMatrix runs the security matrix of issue 3 against one system:
// cross-customer access, bad tokens, admin-only removals and malformed input.
func TestSecurityMatrix(t *testing.T) {
	s := mustStart(t, options{})
	aSub := customer("victim")
	aTok := token(t, aSub, "")

	// The victim's carts: one checked out, one open with items, each touched
	// with an Idempotency-Key.
	var carts []*secCart
	for _, state := range []string{"checked-out", "open"} {
		c := &secCart{state: state, key: "victim-add-" + state, keyBody: item("123", 2)}
		if state == "open" {
			r, err := sendKeyed(s.commandURL+"/v1/carts", aTok, ownerOpenKey, map[string]any{})
			if err != nil || r.Status != http.StatusCreated {
				t.Fatalf("open: %v %d %s", err, r.Status, r.Body)
			}
			var res commandResult
			if err := json.Unmarshal(r.Body, &res); err != nil {
				t.Fatal(err)
			}
			c.id = res.CartID
		} else {
			c.id = s.command(t, aTok, "/v1/carts", nil).CartID
		}
		if r, err := sendKeyed(s.commandURL+"/v1/carts/"+c.id+"/add-item", aTok, c.key, c.keyBody); err != nil || r.Status != http.StatusOK {
			t.Fatalf("keyed add-item: %v %d %s", err, r.Status, r.Body)
		}
		next := "checkout"
		var body any
		if state == "open" {
			next, body = "add-item", item("456", 1)
		}
		c.version = s.command(t, aTok, "/v1/carts/"+c.id+"/"+next, body).Version
		s.awaitCart(t, aTok, c.id, c.version)
		carts = append(carts, c)
	}
	open := carts[1]
	aCarts := []string{carts[0].id, carts[1].id}

	t.Run("CrossCustomer", func(t *testing.T) { crossCustomer(t, s, aSub, aTok, carts, aCarts) })
	t.Run("BadTokens", func(t *testing.T) { badTokens(t, s, aSub, aTok, open, aCarts) })
	t.Run("MalformedInput", func(t *testing.T) { malformed(t, s, aTok, open, aCarts) })
	t.Run("AdminOnly", func(t *testing.T) { adminOnly(t, s, aSub, aTok, carts, aCarts) })
}
