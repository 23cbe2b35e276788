package e2e_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
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

// probe is one request a stranger tries on a cart; waits marks reads with
// ?minVersion, which wait (bounded) before answering.
type probe struct {
	name  string
	send  func(tok, cartID string) (reply, error)
	waits bool
}

func crossProbes(s *system, c *secCart) []probe {
	post := func(path string, body any, kv ...string) func(string, string) (reply, error) {
		return func(tok, id string) (reply, error) {
			return call(http.MethodPost, s.commandURL+"/v1/carts/"+id+"/"+path,
				hdr(tok, append([]string{"Content-Type", "application/json"}, kv...)...), jsonBody(body))
		}
	}
	get := func(suffix string, kv ...string) func(string, string) (reply, error) {
		return func(tok, id string) (reply, error) {
			return call(http.MethodGet, s.queryURL+"/v1/carts/"+id+suffix, hdr(tok, kv...), nil)
		}
	}
	etag := fmt.Sprintf("%q", fmt.Sprint(c.version))
	now := url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
	removal := map[string]any{"productId": "123"}
	change := item("123", 3)
	return []probe{
		{name: "add-item", send: post("add-item", item("123", 1))},
		{name: "add-item/owner-idempotency-key", send: post("add-item", c.keyBody, "Idempotency-Key", c.key)},
		{name: "add-item/if-match-current", send: post("add-item", item("123", 1), "If-Match", etag)},
		{name: "remove-item", send: post("remove-item", removal)},
		{name: "remove-item/product-unavailable", send: post("remove-item", map[string]any{"productId": "123", "reason": "product-unavailable"})},
		{name: "remove-item/owner-idempotency-key", send: post("remove-item", removal, "Idempotency-Key", c.key)},
		// The attacker used this key on their own cart: a stored key must
		// not tell an existing cart from a missing one.
		{name: "add-item/attacker-used-key", send: post("add-item", item("123", 1), "Idempotency-Key", ownerOpenKey)},
		{name: "checkout/attacker-used-key", send: post("checkout", map[string]any{}, "Idempotency-Key", ownerOpenKey)},
		{name: "change-quantity", send: post("change-quantity", change)},
		{name: "change-quantity/owner-idempotency-key", send: post("change-quantity", change, "Idempotency-Key", c.key)},
		{name: "checkout", send: post("checkout", nil)},
		{name: "checkout/owner-idempotency-key", send: post("checkout", map[string]any{}, "Idempotency-Key", c.key)},
		{name: "get", send: get("")},
		{name: "get/at-now", send: get("?at=" + now)},
		{name: "get/if-none-match-current", send: get("", "If-None-Match", etag)},
		{name: "get/minVersion", send: get("?minVersion=1"), waits: true},
		{name: "get/minVersion-at", send: get(fmt.Sprintf("?minVersion=%d&at=%s", c.version, now)), waits: true},
		{name: "history", send: get("/history")},
		{name: "history/if-none-match-any", send: get("/history", "If-None-Match", "*")},
		{name: "history/minVersion", send: get("/history?minVersion=1"), waits: true},
	}
}

// refusal is a refusal with what must not depend on the cart: the body
// with the cart id and request id blanked, and the headers but the per-request ones.
func refusal(r reply, cartID string) string {
	var b problem.Body
	_ = json.Unmarshal(r.Body, &b)
	b.RequestID = ""
	b.Instance = strings.ReplaceAll(b.Instance, cartID, "{id}")
	h := r.Header.Clone()
	for _, k := range []string{"Date", "X-Request-Id", "X-Correlation-Id"} {
		h.Del(k)
	}
	keys := slices.Sorted(maps.Keys(h))
	var out strings.Builder
	fmt.Fprintf(&out, "%d %+v", r.Status, b)
	for _, k := range keys {
		fmt.Fprintf(&out, "\n%s: %s", k, h[k])
	}
	return out.String()
}

func crossCustomer(t *testing.T, s *system, aSub, aTok string, carts []*secCart, aCarts []string) {
	attackers := map[string]string{
		"stranger":  customer("mallory"),
		"uppercase": strings.ToUpper(aSub), // a look-alike subject is someone else
		"padded":    aSub + " ",
	}
	type result struct {
		attacker, cart string
		probe          probe
		attack, base   reply
		id, baseID     string
		err            error
	}
	var results []*result
	for _, name := range slices.Sorted(maps.Keys(attackers)) {
		for _, c := range carts {
			for _, p := range crossProbes(s, c) {
				results = append(results, &result{attacker: name, cart: c.state, probe: p, id: c.id, baseID: uuid.NewString()})
			}
		}
	}
	// Each attacker has no open cart, then opens one with the key the victim
	// opened theirs with, and gets their own.
	own := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(attackers)) {
		tok := token(t, attackers[name], "")
		problemOf(t, do(t, http.MethodGet, s.queryURL+"/v1/customers/me/cart", tok, nil), http.StatusNotFound, "no-open-cart")
		r, err := sendKeyed(s.commandURL+"/v1/carts", tok, ownerOpenKey, map[string]any{})
		var opened commandResult
		if err == nil {
			err = json.Unmarshal(r.Body, &opened)
		}
		if err != nil || r.Status != http.StatusCreated || slices.Contains(aCarts, opened.CartID) {
			t.Fatalf("%s opens a cart with the victim's key: %v %d %s", name, err, r.Status, r.Body)
		}
		own[name] = opened.CartID
	}
	before := s.ownerView(t, aTok, aCarts)

	// Fired all at once: the ?minVersion reads each wait their bound.
	var wg sync.WaitGroup
	for _, r := range results {
		tok := token(t, attackers[r.attacker], "")
		wg.Go(func() {
			var err1, err2 error
			r.attack, err1 = r.probe.send(tok, r.id)
			r.base, err2 = r.probe.send(tok, r.baseID)
			r.err = errors.Join(err1, err2)
		})
	}
	wg.Wait()

	succeeded := 0
	for _, r := range results {
		if r.err == nil && r.attack.Status < 400 {
			succeeded++
		}
		t.Run(r.attacker+"/"+r.cart+"/"+r.probe.name, func(t *testing.T) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			status, code := http.StatusNotFound, cart.ErrNotFound.Code
			if r.probe.waits {
				// Nothing to wait for is indistinguishable from a read model
				// that is behind: 503 read-model-behind, at version 0.
				status, code = http.StatusServiceUnavailable, "read-model-behind"
				if v := r.attack.Header.Get("X-Read-Model-Version"); v != "0" {
					t.Errorf("X-Read-Model-Version %q reveals the cart", v)
				}
			}
			problemOf(t, r.attack, status, code)
			if got, want := refusal(r.attack, r.id), refusal(r.base, r.baseID); got != want {
				t.Errorf("the victim's cart answers\n%s\nbut a missing cart\n%s", got, want)
			}
		})
	}
	if after := s.ownerView(t, aTok, aCarts); after != before {
		t.Errorf("the victim's carts changed:\nbefore %s\nafter %s", before, after)
	}
	t.Logf("cross-customer: %d of %d reads and writes on the victim's carts succeeded (%d attackers × %d carts × %d probes)",
		succeeded, len(results), len(attackers), len(carts), len(results)/len(attackers)/len(carts))
	if succeeded != 0 {
		t.Errorf("%d of %d cross-customer requests succeeded", succeeded, len(results))
	}

	// "My cart" is each attacker's own, never the victim's.
	for _, name := range slices.Sorted(maps.Keys(attackers)) {
		r := do(t, http.MethodGet, s.queryURL+"/v1/customers/me/cart?minVersion=1", token(t, attackers[name], ""), nil)
		var doc struct{ CartID, CustomerID string }
		if err := json.Unmarshal(r.Body, &doc); err != nil || r.Status != http.StatusOK ||
			doc.CartID != own[name] || doc.CustomerID != attackers[name] {
			t.Errorf("%s's own cart: %d %s (%v), want %s", name, r.Status, r.Body, err, own[name])
		}
	}
}

// jwtSeg is a JWT segment: base64url of v's JSON.
func jwtSeg(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// craft builds a JWT by hand: header {alg}, claims, and an HMAC signature
// (SHA-512 for HS512, else SHA-256 whatever alg says) — none for alg none.
func craft(alg string, claims map[string]any, secret []byte) string {
	in := jwtSeg(map[string]any{"alg": alg, "typ": "JWT"}) + "." + jwtSeg(claims)
	if alg == "none" {
		return in + "."
	}
	h := sha256.New
	if alg == "HS512" {
		h = sha512.New
	}
	m := hmac.New(func() hash.Hash { return h() }, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func badTokens(t *testing.T, s *system, aSub, aTok string, open *secCart, aCarts []string) {
	now := time.Now()
	// Claims that would make the caller an admin acting as the victim: any
	// of these tokens, if accepted, could write to the victim's cart.
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": testAuth.Issuer, "aud": testAuth.Audience, "sub": aSub, "role": "admin",
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	secret := []byte(testSecret)
	valid := craft("HS256", claims(nil), secret)
	other := strings.Split(token(t, customer("mallory"), ""), ".")

	// Control: the hand-made token is accepted, so the refusals below are
	// the verifier's doing, not a crafting mistake.
	if r := do(t, http.MethodGet, s.queryURL+"/v1/carts/"+open.id, valid, nil); r.Status != http.StatusOK {
		t.Fatalf("a well-made token is refused: %d %s", r.Status, r.Body)
	}

	tokens := []struct {
		name, auth, code string
	}{
		{"no-header", "", "unauthorized"},
		{"basic-scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte(aSub+":pw")), "unauthorized"},
		{"empty-bearer", "Bearer ", "unauthorized"},
		{"garbage", "Bearer not-a-jwt", "invalid-token"},
		{"alg-none", "Bearer " + craft("none", claims(nil), nil), "invalid-token"},
		{"wrong-secret", "Bearer " + craft("HS256", claims(nil), []byte(strings.Repeat("k", 48))), "invalid-token"},
		{"hs512-right-secret", "Bearer " + craft("HS512", claims(nil), secret), "invalid-token"},
		{"tampered-payload", "Bearer " + other[0] + "." + jwtSeg(claims(nil)) + "." + other[2], "invalid-token"},
		{"expired", "Bearer " + craft("HS256", claims(func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		}), secret), "invalid-token"},
		{"no-exp", "Bearer " + craft("HS256", claims(func(c map[string]any) { delete(c, "exp") }), secret), "invalid-token"},
		{"wrong-iss", "Bearer " + craft("HS256", claims(func(c map[string]any) { c["iss"] = "https://evil.test" }), secret), "invalid-token"},
		{"wrong-aud", "Bearer " + craft("HS256", claims(func(c map[string]any) { c["aud"] = "other-api" }), secret), "invalid-token"},
		{"empty-sub", "Bearer " + craft("HS256", claims(func(c map[string]any) { c["sub"] = "" }), secret), "invalid-token"},
		{"nbf-future", "Bearer " + craft("HS256", claims(func(c map[string]any) { c["nbf"] = now.Add(5 * time.Minute).Unix() }), secret), "invalid-token"},
		{"key-confusion-rs256", "Bearer " + craft("RS256", claims(nil), secret), "invalid-token"},
	}
	type route struct {
		method, url string
		body        any
	}
	routes := []route{
		{http.MethodPost, s.commandURL + "/v1/carts", nil},
		{http.MethodPost, s.commandURL + "/v1/carts/" + open.id + "/add-item", item("123", 1)},
		{http.MethodPost, s.commandURL + "/v1/carts/" + open.id + "/remove-item", map[string]any{"productId": "123", "reason": "product-unavailable"}},
		{http.MethodPost, s.commandURL + "/v1/carts/" + open.id + "/change-quantity", item("123", 5)},
		{http.MethodPost, s.commandURL + "/v1/carts/" + open.id + "/checkout", nil},
		{http.MethodGet, s.queryURL + "/v1/carts/" + open.id, nil},
		{http.MethodGet, s.queryURL + "/v1/carts/" + open.id + "/history", nil},
		{http.MethodGet, s.queryURL + "/v1/customers/me/cart", nil},
	}
	before := s.ownerView(t, aTok, aCarts)
	n := 0
	for _, tk := range tokens {
		for _, rt := range routes {
			n++
			name := tk.name + "/" + rt.method + strings.NewReplacer(s.commandURL, "", s.queryURL, "", open.id, "{id}").Replace(rt.url)
			t.Run(name, func(t *testing.T) {
				h := hdr("", "Content-Type", "application/json")
				if tk.auth != "" {
					h.Set("Authorization", tk.auth)
				}
				r, err := call(rt.method, rt.url, h, jsonBody(rt.body))
				if err != nil {
					t.Fatal(err)
				}
				problemOf(t, r, http.StatusUnauthorized, tk.code)
				if wa := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") {
					t.Errorf("WWW-Authenticate %q", wa)
				}
				if _, tok, _ := strings.Cut(tk.auth, " "); len(tok) > 16 && bytes.Contains(r.Body, []byte(tok)) {
					t.Error("the answer echoes the token")
				}
			})
		}
	}
	if after := s.ownerView(t, aTok, aCarts); after != before {
		t.Errorf("bad tokens changed something:\nbefore %s\nafter %s", before, after)
	}
	t.Logf("bad tokens: %d requests (%d tokens × %d routes), all must be 401", n, len(tokens), len(routes))
}

func malformed(t *testing.T, s *system, aTok string, open *secCart, aCarts []string) {
	type tc struct {
		name, method, url, contentType string
		body                           io.Reader
		extra                          []string // header pairs
		status                         int      // 0: any 4xx
		code                           string
	}
	big := `{"productId":"123","quantity":1,"pad":"` + strings.Repeat("x", 70<<10) + `"}`
	var cases []tc
	cmdRoutes := map[string]string{"open": "/v1/carts", "add-item": "/v1/carts/" + open.id + "/add-item",
		"remove-item": "/v1/carts/" + open.id + "/remove-item", "change-quantity": "/v1/carts/" + open.id + "/change-quantity",
		"checkout": "/v1/carts/" + open.id + "/checkout"}
	for _, route := range slices.Sorted(maps.Keys(cmdRoutes)) {
		u := s.commandURL + cmdRoutes[route]
		add := func(name, ct, body string, status int, code string, extra ...string) {
			cases = append(cases, tc{route + "/" + name, http.MethodPost, u, ct, strings.NewReader(body), extra, status, code})
		}
		const js = "application/json"
		valid := `{"productId":"123","quantity":1}`
		switch route {
		case "open", "checkout":
			valid = `{}`
		case "remove-item":
			valid = `{"productId":"123"}`
		}
		add("not-json", js, "not json", 400, "malformed-body")
		add("truncated", js, `{"productId":`, 400, "malformed-body")
		add("array", js, `[]`, 400, "malformed-body")
		add("null", js, `null`, 400, "malformed-body")
		add("trailing-data", js, valid+`{}`, 400, "malformed-body")
		add("text-plain", "text/plain", valid, 415, "unsupported-media-type")
		add("no-content-type", "", valid, 415, "unsupported-media-type")
		add("form", "application/x-www-form-urlencoded", "productId=123&quantity=1", 415, "unsupported-media-type")
		add("unknown-field-unitPrice", js, `{"productId":"123","quantity":1,"unitPrice":1}`, 400, "malformed-body")
		add("unknown-field-customerId", js, `{"customerId":"someone-else"}`, 400, "malformed-body")
		add("over-64KiB", js, big, 413, "body-too-large")
		cases = append(cases, tc{route + "/over-64KiB-chunked", http.MethodPost, u, js,
			io.MultiReader(strings.NewReader(big)), nil, 413, "body-too-large"}) // no Content-Length
		add("idempotency-key-too-long", js, valid, 400, "invalid-idempotency-key", "Idempotency-Key", strings.Repeat("k", 256))
		if route != "open" {
			add("if-match-unquoted", js, valid, 400, "malformed-if-match", "If-Match", "3")
			add("cart-id-not-uuid", js, valid, 404, "cart-not-found")
			cases[len(cases)-1].url = strings.Replace(u, open.id, "not-a-uuid", 1)
		}
		if route == "add-item" || route == "change-quantity" {
			for _, q := range []string{"0", "100", "-1"} {
				add("quantity-"+q, js, `{"productId":"123","quantity":`+q+`}`, 422, "invalid-quantity")
			}
			for _, q := range []string{`"two"`, "1.5", "1e2", "null"} {
				add("quantity-"+q, js, `{"productId":"123","quantity":`+q+`}`, 0, "")
			}
			add("productId-number", js, `{"productId":123,"quantity":1}`, 400, "malformed-body")
			add("productId-empty", js, `{"productId":"","quantity":1}`, 422, "invalid-product-id")
			add("productId-NUL", js, `{"productId":"12\u00003","quantity":1}`, 0, "")
		}
		if route == "remove-item" {
			add("reason-unknown", js, `{"productId":"123","reason":"admin"}`, 422, "invalid-reason")
		}
	}
	q := func(name, path string, status int, code string) {
		cases = append(cases, tc{name: name, method: http.MethodGet, url: s.queryURL + path, status: status, code: code})
	}
	for _, mv := range []string{"0", "-1", "abc", "1.5", "", "99999999999999999999"} {
		arg := "?minVersion=" + url.QueryEscape(mv)
		q("get/minVersion="+mv, "/v1/carts/"+open.id+arg, 400, "invalid-min-version")
		q("history/minVersion="+mv, "/v1/carts/"+open.id+"/history"+arg, 400, "invalid-min-version")
		q("me/minVersion="+mv, "/v1/customers/me/cart"+arg, 400, "invalid-min-version")
	}
	for _, at := range []string{"yesterday", "2026-02-30T00:00:00Z", "2026-03-01", "2026-03-01T09:30:00 01:00", ""} {
		q("get/at="+at, "/v1/carts/"+open.id+"?at="+url.QueryEscape(at), 400, "invalid-at")
	}
	q("get/cart-id-not-uuid", "/v1/carts/not-a-uuid", 404, "cart-not-found")
	q("history/cart-id-not-uuid", "/v1/carts/not-a-uuid/history", 404, "cart-not-found")

	before := s.ownerView(t, aTok, aCarts)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := hdr(aTok, c.extra...)
			if c.contentType != "" {
				h.Set("Content-Type", c.contentType)
			}
			r, err := call(c.method, c.url, h, c.body)
			if err != nil {
				t.Fatal(err)
			}
			problemOf(t, r, c.status, c.code)
		})
	}
	if after := s.ownerView(t, aTok, aCarts); after != before {
		t.Errorf("malformed input changed something:\nbefore %s\nafter %s", before, after)
	}
	t.Logf("malformed input: %d requests, all must be 4xx problems", len(cases))
}

func adminOnly(t *testing.T, s *system, aSub, aTok string, carts []*secCart, aCarts []string) {
	open := carts[1]
	removal := map[string]any{"productId": "456", "reason": cart.ReasonProductUnavailable}
	path := s.commandURL + "/v1/carts/" + open.id + "/remove-item"
	before := s.ownerView(t, aTok, aCarts)
	// The owner, also with roles that merely look privileged.
	for _, role := range []string{"", "Admin", "ADMIN", "admin ", "root", "customer", "systems"} {
		t.Run("owner-role-"+role, func(t *testing.T) {
			r := do(t, http.MethodPost, path, token(t, aSub, role), removal)
			problemOf(t, r, http.StatusForbidden, cart.ErrReasonNotPermitted.Code)
		})
	}
	if after := s.ownerView(t, aTok, aCarts); after != before {
		t.Fatalf("a refused removal changed something:\nbefore %s\nafter %s", before, after)
	}

	opsTok := token(t, "ops", "admin")
	res := s.command(t, opsTok, "/v1/carts/"+open.id+"/remove-item", removal)
	if res.Version != open.version+1 {
		t.Fatalf("admin removal: version %d, want %d", res.Version, open.version+1)
	}
	_, evs := s.replay(t, open.id)
	last := evs[len(evs)-1]
	var data struct{ ProductID, Reason string }
	if err := json.Unmarshal(last.Data, &data); err != nil || last.Type != cart.TypeItemRemoved ||
		last.Metadata.Actor != "ops" || data.Reason != cart.ReasonProductUnavailable || data.ProductID != "456" {
		t.Errorf("stored event %s by %q: %s (%v)", last.Type, last.Metadata.Actor, last.Data, err)
	}

	// The owner's audit trail says who removed it and why; the admin and a
	// system caller may read the owner's carts.
	for name, tok := range map[string]string{"owner": aTok, "admin": opsTok, "system": token(t, "catalog-sync", "system")} {
		t.Run("history-as-"+name, func(t *testing.T) {
			r := do(t, http.MethodGet, fmt.Sprintf("%s/v1/carts/%s/history?minVersion=%d", s.queryURL, open.id, res.Version), tok, nil)
			var h struct {
				Events []struct{ Type, Actor, Reason string }
			}
			if err := json.Unmarshal(r.Body, &h); err != nil || r.Status != http.StatusOK || len(h.Events) != res.Version {
				t.Fatalf("history: %d %s (%v)", r.Status, r.Body, err)
			}
			if e := h.Events[len(h.Events)-1]; e.Type != cart.TypeItemRemoved || e.Actor != "ops" || e.Reason != cart.ReasonProductUnavailable {
				t.Errorf("last history event %+v", e)
			}
		})
		t.Run("read-as-"+name, func(t *testing.T) {
			for _, c := range carts {
				r := do(t, http.MethodGet, s.queryURL+"/v1/carts/"+c.id, tok, nil)
				var doc struct{ CustomerID string }
				if err := json.Unmarshal(r.Body, &doc); err != nil || r.Status != http.StatusOK || doc.CustomerID != aSub {
					t.Errorf("%s cart: %d %s (%v)", c.state, r.Status, r.Body, err)
				}
			}
		})
	}
}
