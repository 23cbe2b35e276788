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
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
)

// Bits of FuzzQueries' flags argument.
const (
	qfCaller      = 0b11 // 0 alice, 1 bob, 2 a system caller, 3 no token
	qfMinVersion  = 1 << 2
	qfAt          = 1 << 3
	qfIfNoneMatch = 1 << 4
	qfHead        = 1 << 5
	qfEscapedPath = 1 << 6
	qfAnonymous   = 3
)

// queryFuzzer is the query API on the real echo stack (NewEcho, Register,
// the real verifier) over memStore. ?minVersion waits at most a
// millisecond, so a version the store never reaches is answered
// read-model-behind at once.
type queryFuzzer struct {
	e      *echo.Echo
	store  *memStore
	tokens [3]string
	logs   bytes.Buffer // error-level logs of the current input
}

func newQueryFuzzer(tb testing.TB) *queryFuzzer {
	tb.Helper()
	v, err := auth.NewVerifier(authCfg)
	if err != nil {
		tb.Fatal(err)
	}
	store, err := newMemStore()
	if err != nil {
		tb.Fatal(err)
	}
	fz := &queryFuzzer{store: store}
	logger := slog.New(slog.NewTextHandler(&fz.logs, &slog.HandlerOptions{Level: slog.LevelError}))
	fz.e = httpserver.NewEcho(logger, prometheus.NewRegistry(), "query-fuzz")
	httpapi.Register(fz.e, v, store, httpapi.Options{MinVersionWait: time.Millisecond})
	for i, sub := range []string{"alice", "bob", "catalog-service"} {
		role := ""
		if i == 2 {
			role = "system"
		}
		if fz.tokens[i], err = auth.Issue(authCfg, sub, role, 24*time.Hour, time.Now()); err != nil {
			tb.Fatal(err)
		}
	}
	return fz
}

// FuzzQueries sends every query route any cart id, ?minVersion, ?at,
// If-None-Match, extra query string and caller, through the real echo
// handler: no input may produce a 5xx (but the documented 503
// read-model-behind for a version the read model does not have) or a
// panic; every 4xx is an RFC 9457 problem; a 200 is the document its ETag
// names; a 304 answers an If-None-Match.
//
// Seeds: the f.Add calls below and the edge cases in
// testdata/fuzz/FuzzQueries.
func FuzzQueries(f *testing.F) {
	for _, s := range querySeeds() {
		f.Add(s.route, s.cartID, s.minVersion, s.at, s.ifNoneMatch, s.rawQuery, s.flags)
	}
	fz := newQueryFuzzer(f)
	f.Fuzz(func(t *testing.T, route uint8, cartID, minVersion, at, ifNoneMatch, rawQuery string, flags uint8) {
		fz.logs.Reset()
		fz.store.takeCalls()
		fz.check(t, fz.request(route, cartID, minVersion, at, ifNoneMatch, rawQuery, flags))
	})
}

func (fz *queryFuzzer) request(route uint8, cartID, minVersion, at, ifNoneMatch, rawQuery string, flags uint8) *http.Request {
	method := http.MethodGet
	if flags&qfHead != 0 {
		method = http.MethodHead
	}
	req := httptest.NewRequest(method, "/", nil)
	switch route % 3 {
	case 0:
		req.URL.Path = "/v1/carts/" + cartID
		if flags&qfEscapedPath != 0 {
			req.URL.RawPath = "/v1/carts/" + url.PathEscape(cartID)
		}
	case 1:
		req.URL.Path = "/v1/carts/" + cartID + "/history"
		if flags&qfEscapedPath != 0 {
			req.URL.RawPath = "/v1/carts/" + url.PathEscape(cartID) + "/history"
		}
	case 2:
		req.URL.Path = "/v1/customers/me/cart"
	}
	q := url.Values{}
	if flags&qfMinVersion != 0 {
		q.Set("minVersion", minVersion)
	}
	if flags&qfAt != 0 {
		q.Set("at", at)
	}
	req.URL.RawQuery = q.Encode()
	if rawQuery != "" {
		req.URL.RawQuery += "&" + rawQuery
	}
	if c := flags & qfCaller; c != qfAnonymous {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+fz.tokens[c])
	}
	if flags&qfIfNoneMatch != 0 {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	return req
}

// check serves req and fails the test on a response no input may produce.
func (fz *queryFuzzer) check(t *testing.T, req *http.Request) {
	t.Helper()
	rec := httptest.NewRecorder()
	fz.e.ServeHTTP(rec, req)
	what := fmt.Sprintf("%s %q (raw %q) ?%q headers %q\n-> %d %s %q\ncalls: %q\nlogs: %s", req.Method, req.URL.Path,
		req.URL.RawPath, req.URL.RawQuery, req.Header, rec.Code, rec.Body, rec.Header(), fz.store.takeCalls(), fz.logs.String())
	head := req.Method == http.MethodHead
	var b problem.Body
	if rec.Code >= 400 && !head {
		if ct := rec.Header().Get(echo.HeaderContentType); ct != problem.ContentType {
			t.Fatalf("error is not a problem (content type %q): %s", ct, what)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Status != rec.Code || b.Code == "" || b.Title == "" {
			t.Fatalf("problem body is malformed (%v): %s", err, what)
		}
	}
	etag := rec.Header().Get("ETag")
	switch {
	case rec.Code == http.StatusServiceUnavailable && (head || b.Code == httpapi.CodeReadModelBehind):
		// The read model does not have ?minVersion: documented, and
		// only with a minVersion above the stored version.
		got, err := strconv.Atoi(rec.Header().Get(httpapi.HeaderReadModelVersion))
		want := 0
		if vals := req.URL.Query()["minVersion"]; len(vals) > 0 {
			want, _ = strconv.Atoi(vals[0])
		}
		if err != nil || got >= want || rec.Header().Get(echo.HeaderRetryAfter) == "" {
			t.Fatalf("read-model-behind without a version above the read model's: %s", what)
		}
	case rec.Code >= 500:
		t.Fatalf("server error: %s", what)
	case rec.Code >= 400:
	case rec.Code == http.StatusNotModified:
		if req.Header.Get("If-None-Match") == "" || etag == "" || rec.Body.Len() != 0 {
			t.Fatalf("304 without If-None-Match, or with a body: %s", what)
		}
	case rec.Code == http.StatusOK:
		if head {
			return
		}
		if !strings.HasPrefix(rec.Header().Get(echo.HeaderContentType), echo.MIMEApplicationJSON) {
			t.Fatalf("200 is not JSON: %s", what)
		}
		var doc struct {
			readmodel.Cart
			Events []httpapi.HistoryEvent `json:"events"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc.Version < 1 {
			t.Fatalf("200 body (%v): %s", err, what)
		}
		if etag != `"`+strconv.Itoa(doc.Version)+`"` {
			t.Fatalf("ETag %q for version %d: %s", etag, doc.Version, what)
		}
	default:
		t.Fatalf("unexpected status: %s", what)
	}
}

type querySeed struct {
	route                                         uint8
	cartID, minVersion, at, ifNoneMatch, rawQuery string
	flags                                         uint8
}

// querySeeds are realistic reads of every route and the refusals the API
// documents.
func querySeeds() []querySeed {
	const (
		minV = qfMinVersion
		at   = qfAt
		inm  = qfIfNoneMatch
		bob  = 1
		sys  = 2
		anon = qfAnonymous
	)
	cart, history, mine := uint8(0), uint8(1), uint8(2)
	t := func(d time.Duration) string { return fuzzT0.Add(d).Format(time.RFC3339Nano) }
	return []querySeed{
		{cart, qAliceCart, "", "", "", "", 0},
		{cart, qAliceCart, "4", "", "", "", minV},
		{cart, qAliceCart, "5", "", "", "", minV},
		{cart, qAliceCart, "0", "", "", "", minV},
		{cart, qAliceCart, "-1", "", "", "", minV},
		{cart, qAliceCart, "", "", "", "", minV},
		{cart, qAliceCart, "4.0", "", "", "", minV},
		{cart, qAliceCart, " 4", "", "", "", minV},
		{cart, qAliceCart, "99999999999999999999", "", "", "", minV},
		{cart, qAliceCart, "9223372036854775807", "", "", "", minV},
		{cart, qAliceCart, "", "", "", "minVersion=1&minVersion=x", 0},
		{cart, qAliceCart, "", "", "", "minVersion", 0},
		{cart, qAliceCart, "", "", "", "%zz&at=%ZZ;x", 0},
		{cart, qAliceCart, "", t(90 * time.Second), "", "", at},
		{cart, qAliceCart, "2", t(90 * time.Second), "", "", at | minV},
		{cart, qAliceCart, "", t(-time.Second), "", "", at},
		{cart, qAliceCart, "", "2026-03-01T10:31:00+01:00", "", "", at},
		{cart, qAliceCart, "", "", "", "at=2026-03-01T10:31:00+01:00", 0},
		{cart, qAliceCart, "", "0000-01-01T00:00:00Z", "", "", at},
		{cart, qAliceCart, "", "9999-12-31T23:59:59.999999999Z", "", "", at},
		{cart, qAliceCart, "", "2026-02-30T00:00:00Z", "", "", at},
		{cart, qAliceCart, "", "2026-03-01T09:31:00.000000000000001Z", "", "", at},
		{cart, qAliceCart, "", "2026-03-01T09:31:00+24:00", "", "", at},
		{cart, qAliceCart, "", "yesterday", "", "", at},
		{cart, qAliceCart, "", t(90 * time.Second), `"2"`, "", at | inm},
		{cart, qAliceCart, "", "", `"4"`, "", inm},
		{cart, qAliceCart, "", "", `W/"4"`, "", inm},
		{cart, qAliceCart, "", "", `*`, "", inm},
		{cart, qAliceCart, "", "", `"1", "4"`, "", inm},
		{cart, qAliceCart, "", "", `"3"`, "", inm},
		{cart, qAliceCart, "", "", `",,,`, "", inm},
		{cart, qAliceCart, "", "", "", "", qfHead},
		{cart, qAliceCart, "5", "", "", "", minV | qfHead},
		{cart, qAliceCart, "", "", "", "", bob},
		{cart, qAliceCart, "", t(time.Hour), "", "", at | bob},
		{cart, qAliceCart, "", "", "", "", sys},
		{cart, qAliceCart, "", "", "", "", anon},
		{cart, strings.ToUpper(qAliceCart), "", "", "", "", 0},
		{cart, "{" + qAliceCart + "}", "", "", "", "", qfEscapedPath},
		{cart, "not-a-uuid", "", "", "", "", 0},
		{cart, "", "", "", "", "", 0},
		{cart, "../customers/me/cart", "", "", "", "", qfEscapedPath},
		{cart, qUnknownCart, "3", "", "", "", minV},
		{cart, qAliceOld, "", "", "", "", 0},
		{cart, qAliceOld, "", t(2 * time.Minute), "", "", at},
		{history, qAliceCart, "", "", "", "", 0},
		{history, qAliceCart, "4", "", `"4"`, "", minV | inm},
		{history, qAliceCart, "7", "", "", "", minV},
		{history, qAliceOld, "", "", "", "", sys},
		{history, qBobCart, "", "", "", "", 0},
		{history, qBobCart, "", "", "", "", bob},
		{history, "0195a3c0-0000-7000-8000-0000000000a1x", "", "", "", "", 0},
		{mine, "", "", "", "", "", 0},
		{mine, "", "4", "", "", "", minV},
		{mine, "", "5", "", "", "", minV},
		{mine, "", "x", "", "", "", minV},
		{mine, "", "", "", `"1"`, "", bob | inm},
		{mine, "", "", "", "", "", sys},
		{mine, "", "", "", "", "", anon},
	}
}
