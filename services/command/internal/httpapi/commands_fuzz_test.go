package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/services/command/internal/httpapi"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

// Bits of FuzzCommands' flags argument.
const (
	fzCaller       = 0b11 // 0 alice, 1 bob, 2 a system caller, 3 no token
	fzContentType  = 1 << 2
	fzKey          = 1 << 3
	fzKeyTwice     = 1 << 4
	fzIfMatch      = 1 << 5
	fzRetry        = 1 << 6
	fzEscapedPath  = 1 << 7
	fzAlice, fzBob = 0, 1
	fzSystem       = 2
	fzAnonymous    = 3
)

// fuzzRoutes are the command routes by FuzzCommands' route argument (mod
// len); the last is a route with the wrong method.
var fuzzRoutes = []struct{ method, suffix string }{
	{http.MethodPost, ""}, // POST /v1/carts
	{http.MethodPost, "/add-item"},
	{http.MethodPost, "/remove-item"},
	{http.MethodPost, "/change-quantity"},
	{http.MethodPost, "/checkout"},
	{http.MethodPut, "/add-item"},
}

// commandFuzzer is the command API on the real echo stack (NewEcho, Mount,
// the real verifier) over memCarts.
type commandFuzzer struct {
	e      *echo.Echo
	carts  *memCarts
	tokens [3]string
	logs   bytes.Buffer // error-level logs of the current input
}

func newCommandFuzzer(tb testing.TB) *commandFuzzer {
	tb.Helper()
	v, err := auth.NewVerifier(authConfig)
	if err != nil {
		tb.Fatal(err)
	}
	fz := &commandFuzzer{carts: newMemCarts()}
	logger := slog.New(slog.NewTextHandler(&fz.logs, &slog.HandlerOptions{Level: slog.LevelError}))
	fz.e = httpserver.NewEcho(logger, prometheus.NewRegistry(), "command-fuzz")
	if err := httpapi.Mount(fz.e, fz.carts, v, nil); err != nil {
		tb.Fatal(err)
	}
	for i, sub := range []string{"alice", "bob", systemCustomer} {
		role := ""
		if i == fzSystem {
			role = "system"
		}
		if fz.tokens[i], err = auth.Issue(authConfig, sub, role, 24*time.Hour, time.Now()); err != nil {
			tb.Fatal(err)
		}
	}
	return fz
}

// FuzzCommands sends every command route any body, Content-Type,
// Idempotency-Key (once or twice), If-Match, cart id and caller, through
// the real echo handler: no input may produce a 5xx or a panic; every 4xx
// is an RFC 9457 problem and writes nothing; every 2xx is a Result with
// its ETag; a retry with the same key replays the first answer.
//
// Seeds: the f.Add calls below and the edge cases in
// testdata/fuzz/FuzzCommands.
func FuzzCommands(f *testing.F) {
	for _, s := range commandSeeds() {
		f.Add(s.route, s.cartID, s.contentType, []byte(s.body), s.key, s.ifMatch, s.flags)
	}
	fz := newCommandFuzzer(f)
	f.Fuzz(func(t *testing.T, route uint8, cartID, contentType string, body []byte, key, ifMatch string, flags uint8) {
		fz.carts.reset()
		fz.logs.Reset()
		first := fz.check(t, fz.request(route, cartID, contentType, body, key, ifMatch, flags), body)
		if flags&fzRetry == 0 {
			return
		}
		again := fz.check(t, fz.request(route, cartID, contentType, body, key, ifMatch, flags), body)
		if flags&(fzKey|fzKeyTwice) == fzKey && first.Code/100 == 2 {
			if again.Code != first.Code || again.Body.String() != first.Body.String() ||
				again.Header().Get(idempotency.ReplayedHeader) != "true" {
				t.Fatalf("retry with key %q: %d %s (replayed %q), first %d %s", key,
					again.Code, again.Body, again.Header().Get(idempotency.ReplayedHeader), first.Code, first.Body)
			}
		}
	})
}

func (fz *commandFuzzer) request(route uint8, cartID, contentType string, body []byte, key, ifMatch string, flags uint8) *http.Request {
	r := fuzzRoutes[int(route)%len(fuzzRoutes)]
	req := httptest.NewRequest(r.method, "/", bytes.NewReader(body))
	if r.suffix == "" {
		req.URL.Path = "/v1/carts"
	} else {
		req.URL.Path = "/v1/carts/" + cartID + r.suffix
		if flags&fzEscapedPath != 0 {
			req.URL.RawPath = "/v1/carts/" + url.PathEscape(cartID) + r.suffix
		}
	}
	if c := flags & fzCaller; c != fzAnonymous {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+fz.tokens[c])
	}
	if flags&fzContentType != 0 {
		req.Header.Set(echo.HeaderContentType, contentType)
	}
	switch {
	case flags&fzKeyTwice != 0:
		req.Header[idempotency.Header] = []string{key, key}
	case flags&fzKey != 0:
		req.Header.Set(idempotency.Header, key)
	}
	if flags&fzIfMatch != 0 {
		req.Header.Set("If-Match", ifMatch)
	}
	return req
}

// check serves req, sent with body, and fails the test on a response no
// input may produce.
func (fz *commandFuzzer) check(t *testing.T, req *http.Request, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	_, eventsBefore := fz.carts.changed()
	rec := httptest.NewRecorder()
	fz.e.ServeHTTP(rec, req)
	calls, eventsAfter := fz.carts.changed()
	what := fmt.Sprintf("%s %q (raw %q) headers %q body %q\n-> %d %s\ncalls: %q\nlogs: %s",
		req.Method, req.URL.Path, req.URL.RawPath, req.Header, shorten(body), rec.Code, rec.Body, calls, fz.logs.String())
	switch {
	case rec.Code >= 500:
		t.Fatalf("server error: %s", what)
	case rec.Code >= 400:
		if ct := rec.Header().Get(echo.HeaderContentType); ct != problem.ContentType {
			t.Fatalf("4xx is not a problem (content type %q): %s", ct, what)
		}
		var b problem.Body
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Status != rec.Code || b.Code == "" || b.Title == "" {
			t.Fatalf("4xx problem body is malformed (%v): %s", err, what)
		}
		if eventsAfter != eventsBefore {
			t.Fatalf("a refused request appended %d events: %s", eventsAfter-eventsBefore, what)
		}
		switch b.Code {
		case "malformed-body", "unsupported-media-type", "body-too-large", httpapi.CodeInvalidKey, "malformed-if-match":
			for _, c := range calls {
				if strings.HasPrefix(c, "Open") || strings.HasPrefix(c, "Update") {
					t.Fatalf("a request refused as %s reached the repository: %s", b.Code, what)
				}
			}
		}
	case rec.Code == http.StatusOK || rec.Code == http.StatusCreated:
		var res httpapi.Result
		dec := json.NewDecoder(rec.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&res); err != nil {
			t.Fatalf("2xx body is not a Result (%v): %s", err, what)
		}
		if _, ok := cart.CanonicalID(res.CartID); !ok || res.CartID != strings.ToLower(res.CartID) || res.Version < 1 {
			t.Fatalf("2xx result %+v: %s", res, what)
		}
		if et := rec.Header().Get("ETag"); et != `"`+strconv.Itoa(res.Version)+`"` {
			t.Fatalf("ETag %q for version %d: %s", et, res.Version, what)
		}
		if rec.Code == http.StatusCreated && rec.Header().Get(echo.HeaderLocation) != "/v1/carts/"+res.CartID {
			t.Fatalf("201 with Location %q: %s", rec.Header().Get(echo.HeaderLocation), what)
		}
	default:
		t.Fatalf("unexpected status: %s", what)
	}
	return rec
}

// shorten keeps failure messages readable.
func shorten(b []byte) []byte {
	if len(b) > 512 {
		return append(b[:512:512], "…"...)
	}
	return b
}

type commandSeed struct {
	route                                   uint8
	cartID, contentType, body, key, ifMatch string
	flags                                   uint8
}

// commandSeeds are realistic requests of every route and the refusals the
// API documents.
func commandSeeds() []commandSeed {
	const (
		j     = "application/json"
		ct    = fzContentType
		key   = fzKey
		match = fzIfMatch
	)
	add, remove, change, checkout, wrongMethod := uint8(1), uint8(2), uint8(3), uint8(4), uint8(5)
	item := `{"productId": "123", "quantity": 1}`
	seeds := []commandSeed{
		// POST /v1/carts
		{0, "", "", "", "", "", fzAlice},
		{0, "", j, "{}", "", "", ct | fzBob},
		{0, "", j, "{}", "open-1", "", ct | key | fzRetry},
		{0, "", j, "", "open-1", "", key | fzKeyTwice},
		{0, "", j, " {} ", "", "", ct | fzSystem},
		{0, "", j, "{}", "", "", ct | fzAnonymous},
		{0, "", j, `{"customerId": "mallory"}`, "", "", ct},
		{0, "", "text/plain", "{}", "", "", ct},
		{0, "", j, "[]", "", "", ct},
		// add-item
		{add, aliceCart, j, item, "", "", ct},
		{add, aliceCart, j, item, "", `"3"`, ct | match},
		{add, aliceCart, j, item, "", `W/"3"`, ct | match},
		{add, aliceCart, j, item, "", `*`, ct | match},
		{add, aliceCart, j, item, "", `"2", "3"`, ct | match},
		{add, aliceCart, j, item, "", `"2"`, ct | match},
		{add, aliceCart, j, item, "", `3`, ct | match},
		{add, aliceCart, j, item, "", `"`, ct | match},
		{add, aliceCart, j, item, "add-1", "", ct | key | fzRetry},
		{add, aliceCart, j, item, "add-1", `"3"`, ct | key | match | fzRetry},
		{add, aliceCart, j, item, "schlüssel", "", ct | key},
		{add, aliceCart, j, item, strings.Repeat("k", 256), "", ct | key},
		{add, aliceCart, j, item, "", "", ct | key},
		{add, strings.ToUpper(aliceCart), j, item, "", "", ct},
		{add, "{" + aliceCart + "}", j, item, "", "", ct},
		{add, "urn:uuid:" + aliceCart, j, item, "", "", ct | fzEscapedPath},
		{add, "not-a-uuid", j, item, "", "", ct},
		{add, "%2e%2e", j, item, "", "", ct | fzEscapedPath},
		{add, "../../carts", j, item, "", "", ct | fzEscapedPath},
		{add, "", j, item, "", "", ct},
		{add, unknownCart, j, item, "", "", ct},
		{add, aliceOldCart, j, item, "", "", ct},
		{add, bobCart, j, item, "", "", ct},
		{add, bobCart, j, item, "", "", ct | fzSystem},
		{add, bobCart, j, `{"productId": "usd", "quantity": 1}`, "", "", ct | fzBob},
		{add, aliceCart, j, `{"productId": "usd", "quantity": 1}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "456", "quantity": 2}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "999", "quantity": 1}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "nope", "quantity": 1}`, "", "", ct},
		{add, aliceCart, j, `{"quantity": 1}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "123", "quantity": 0}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "123", "quantity": "2"}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "123", "quantity": 1.5}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "123", "quantity": 1e400}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "123", "quantity": 99999999999999999999999}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "123", "quantity": -9223372036854775808}`, "", "", ct},
		{add, aliceCart, j, `{"productId": 123, "quantity": 1}`, "", "", ct},
		{add, aliceCart, j, `{"productId": null, "quantity": null}`, "", "", ct},
		{add, aliceCart, j, `{"productId": {"a": [[[[{}]]]]}, "quantity": [1]}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "123", "productId": "456", "quantity": 1}`, "", "", ct},
		{add, aliceCart, j, "{\"productId\": \"12\xff3\", \"quantity\": 1}", "", "", ct}, // invalid UTF-8
		{add, aliceCart, j, `{"productId": "\u0000", "quantity": 1}`, "", "", ct},
		{add, aliceCart, j, `{"productId": "\ud800", "quantity": 1}`, "", "", ct},
		{add, aliceCart, j, `{"PRODUCTID": "123", "Quantity": 1}`, "", "", ct},
		{add, aliceCart, j, item + ` {}`, "", "", ct},
		{add, aliceCart, j, item + `x`, "", "", ct},
		{add, aliceCart, j, "\xef\xbb\xbf" + item, "", "", ct},
		{add, aliceCart, j, `{"productId": "123", "quantity": 1`, "", "", ct},
		{add, aliceCart, j, `null`, "", "", ct},
		{add, aliceCart, j, ``, "", "", ct},
		{add, aliceCart, "", item, "", "", ct},
		{add, aliceCart, "", item, "", "", 0},
		{add, aliceCart, "application/json; charset=utf-8", item, "", "", ct},
		{add, aliceCart, "application/json; charset", item, "", "", ct},
		{add, aliceCart, "APPLICATION/JSON", item, "", "", ct},
		{add, aliceCart, "application/problem+json", item, "", "", ct},
		{add, aliceCart, "application/x-www-form-urlencoded", "productId=123&quantity=1", "", "", ct},
		{add, aliceCart, j, `{"productId": "` + strings.Repeat("x", 70<<10) + `", "quantity": 1}`, "", "", ct},
		{add, aliceCart, j, strings.Repeat("[", 10000), "", "", ct},
		{add, aliceCart, j, "{" + strings.Repeat(`"a":{`, 5000), "", "", ct},
		{wrongMethod, aliceCart, j, item, "", "", ct},
		// remove-item
		{remove, aliceCart, j, `{"productId": "123"}`, "", "", ct},
		{remove, aliceCart, j, `{"productId": "123", "reason": "customer"}`, "rm-1", "", ct | key | fzRetry},
		{remove, aliceCart, j, `{"productId": "123", "reason": "product-unavailable"}`, "", "", ct},
		{remove, aliceCart, j, `{"productId": "123", "reason": "product-unavailable"}`, "", "", ct | fzSystem},
		{remove, aliceCart, j, `{"productId": "123", "reason": "boredom"}`, "", "", ct},
		{remove, aliceCart, j, `{"productId": "789"}`, "", "", ct},
		{remove, aliceCart, j, `{"productId": ""}`, "", "", ct},
		// change-quantity
		{change, aliceCart, j, `{"productId": "456", "quantity": 99}`, "", `"3"`, ct | match},
		{change, aliceCart, j, `{"productId": "456", "quantity": 98}`, "noop-1", "", ct | key | fzRetry},
		{change, aliceCart, j, `{"productId": "456", "quantity": 100}`, "", "", ct},
		{change, aliceCart, j, `{"productId": "789", "quantity": 1}`, "", "", ct},
		// checkout
		{checkout, aliceCart, "", "", "", "", 0},
		{checkout, aliceCart, j, "{}", "co-1", `"3"`, ct | key | match | fzRetry},
		{checkout, aliceCart, j, " null ", "", "", ct},
		{checkout, aliceCart, j, `{"force": true}`, "", "", ct},
		{checkout, aliceOldCart, j, "{}", "", "", ct},
		{checkout, bobCart, j, "{}", "", "", ct | fzBob},
		{checkout, bobCart, j, "{}", "", "", ct | fzAnonymous},
	}
	return seeds
}
