package httpserver

import (
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// methods answers what echo's router does not: a known path asked with a
// method it does not serve is 405 with an Allow header (RFC 9110 §15.5.6),
// not the 404 (or, under a group with auth, the 401) of a group's catch-all
// route; and HEAD is served by a path's GET route, without the body
// (RFC 9110 §9.3.2). The table of routes is built on the first request,
// when every route is registered.
type methods struct {
	e    *echo.Echo
	once sync.Once
	// served holds every real route (not a group's catch-all).
	served    map[route]bool
	templates []routeTemplate
}

type route struct{ method, path string }

type routeTemplate struct {
	segments []string // ":x" matches one segment, "*" the rest
	methods  []string
}

func (m *methods) build() {
	m.served = map[route]bool{}
	byPath := map[string][]string{}
	for _, r := range m.e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		m.served[route{r.Method, r.Path}] = true
		byPath[r.Path] = append(byPath[r.Path], r.Method)
	}
	for p, ms := range byPath {
		m.templates = append(m.templates, routeTemplate{segments: strings.Split(p, "/"), methods: ms})
	}
}

// resolve returns the handler that is to serve c: next when the router
// found a route for the request's method, the GET route for a HEAD, or an
// error: 405 (Allow set) for a known path, else next (the 404).
func (m *methods) resolve(c echo.Context, next echo.HandlerFunc) (echo.HandlerFunc, error) {
	m.once.Do(m.build)
	req := c.Request()
	if m.served[route{req.Method, c.Path()}] {
		return next, nil
	}
	path := req.URL.EscapedPath()
	allowed := m.allowed(path)
	if len(allowed) == 0 {
		return next, nil
	}
	if req.Method == http.MethodHead && slices.Contains(allowed, http.MethodGet) {
		m.e.Router().Find(http.MethodGet, echo.GetPath(req), c)
		return c.Handler(), nil
	}
	c.Response().Header().Set(echo.HeaderAllow, strings.Join(allowed, ", "))
	return nil, echo.ErrMethodNotAllowed
}

// allowed lists the methods of every route whose template matches path,
// HEAD included wherever GET is.
func (m *methods) allowed(path string) []string {
	segs := strings.Split(path, "/")
	var out []string
	for _, t := range m.templates {
		if t.matches(segs) {
			out = append(out, t.methods...)
		}
	}
	if slices.Contains(out, http.MethodGet) {
		out = append(out, http.MethodHead)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (t routeTemplate) matches(segs []string) bool {
	for i, s := range t.segments {
		switch {
		case s == "*":
			return true
		case i >= len(segs):
			return false
		case strings.HasPrefix(s, ":"):
			if segs[i] == "" {
				return false
			}
		case s != segs[i]:
			return false
		}
	}
	return len(segs) == len(t.segments)
}
