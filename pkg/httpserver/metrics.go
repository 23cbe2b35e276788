package httpserver

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	service  string
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// series caches the children of requests and duration by their
	// labels: looking them up in the vectors hashes every label value of
	// every request. The labels are bounded (methodLabel, routeLabel), so
	// is the cache.
	mu     sync.RWMutex
	series map[seriesKey]series
}

type seriesKey struct {
	method, route string
	status        int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(reg *prometheus.Registry, service string) *metrics {
	m := &metrics{
		service: service,
		series:  map[seriesKey]series{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served, by route template and status code.",
		}, []string{"service", "method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request latency, by route template.",
			Buckets: prometheus.DefBuckets,
		}, []string{"service", "method", "route"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.duration = register(reg, m.duration)
	}
	return m
}

// register adds c to reg, or returns the collector already there, so that
// two echo instances (e.g. in one test binary) can share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("httpserver: register metrics: " + err.Error())
	}
	return c
}

func (m *metrics) observe(method, route string, status int, elapsed time.Duration) {
	k := seriesKey{method: method, route: route, status: status}
	m.mu.RLock()
	s, ok := m.series[k]
	m.mu.RUnlock()
	if !ok {
		s = series{
			requests: m.requests.WithLabelValues(m.service, method, route, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(m.service, method, route),
		}
		m.mu.Lock()
		m.series[k] = s
		m.mu.Unlock()
	}
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
}

// methodLabel and routeLabel bound the label values: arbitrary methods and
// unmatched URLs would otherwise create a series per request.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// routeLabel is the route template (c.Path()); echo leaves it empty when no
// route matched, so unknown URLs share one series.
func routeLabel(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "unmatched"
}
