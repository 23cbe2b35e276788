// Package openapitest checks a running service against its OpenAPI document:
// every route it serves is documented, and every response it gives matches
// the documented status, headers and body schema.
package openapitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/openapi"
)

// MustLoad loads and validates a document, as the service serves it, or
// fails the test.
func MustLoad(tb testing.TB, spec []byte) *openapi3.T {
	tb.Helper()
	doc, err := Load(spec)
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// Load parses the document the service serves (openapi.ToJSON of its YAML)
// and validates it against OpenAPI 3.
func Load(spec []byte) (*openapi3.T, error) {
	body, err := openapi.ToJSON(spec)
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		return nil, fmt.Errorf("openapi: load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi: invalid document: %w", err)
	}
	return doc, nil
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// CheckRoutes fails the test for every route a service serves that the
// document lacks, and for every documented operation it does not serve.
func CheckRoutes(tb testing.TB, doc *openapi3.T, routes []*echo.Route) {
	tb.Helper()
	served := map[string]bool{}
	for _, r := range routes {
		if r.Method == echo.RouteNotFound || r.Method == http.MethodOptions || r.Method == http.MethodHead {
			continue
		}
		key := r.Method + " " + echoParam.ReplaceAllString(r.Path, "{$1}")
		served[key] = true
		if p := doc.Paths.Find(echoParam.ReplaceAllString(r.Path, "{$1}")); p == nil || p.GetOperation(r.Method) == nil {
			tb.Errorf("route %s is served but not in the OpenAPI document", key)
		}
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	sort.Strings(documented)
	for _, key := range documented {
		if !served[key] {
			tb.Errorf("operation %s is in the OpenAPI document but not served", key)
		}
	}
}

// Client returns an HTTP client that validates every response it receives
// against the document of the service it was sent to, chosen by host
// ("127.0.0.1:8080"); a response that does not conform fails the test.
// Hosts not in docs are not checked.
func Client(tb testing.TB, docs map[string]*openapi3.T) *http.Client {
	tb.Helper()
	t := &transport{tb: tb, base: http.DefaultTransport, routers: map[string]routers.Router{}}
	for host, doc := range docs {
		// Match on paths only: the document's server URL is the local default,
		// tests listen on other ports.
		clone := *doc
		clone.Servers = nil
		r, err := gorillamux.NewRouter(&clone)
		if err != nil {
			tb.Fatalf("openapitest: router for %s: %v", host, err)
		}
		t.routers[host] = r
	}
	return &http.Client{Transport: t}
}

type transport struct {
	tb      testing.TB
	base    http.RoundTripper
	mu      sync.Mutex
	routers map[string]routers.Router
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	router, ok := t.routers[req.URL.Host]
	if !ok {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if verr := validate(router, req, resp, body); verr != nil {
		t.tb.Errorf("openapitest: %s %s → %d does not match the OpenAPI document: %v\nbody: %s",
			req.Method, req.URL.Path, resp.StatusCode, verr, truncate(body))
	}
	return resp, nil
}

func validate(router routers.Router, req *http.Request, resp *http.Response, body []byte) error {
	route, params, err := router.FindRoute(req)
	if err != nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: resp.StatusCode,
		Header: resp.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true, // an undocumented status is an error
			MultiError:            true,
		},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 500 {
		return s[:500] + "…"
	}
	return s
}
