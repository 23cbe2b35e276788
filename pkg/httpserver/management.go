package httpserver

import (
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cart-cqrs/cart/pkg/envconf"
)

// ListenMetrics binds addr, the management address, for GET /metrics: reg
// plus the Go and process collectors. It is a listener of its own so that
// what a service measures about itself (routes, rates, internals) is not on
// the public API's port; bind it to loopback or a cluster-internal address.
// An empty addr turns it off: nil, nil.
func ListenMetrics(addr string, reg *prometheus.Registry, logger *slog.Logger) (*Server, error) {
	if addr == "" {
		return nil, nil
	}
	register(reg, collectors.NewGoCollector())
	register(reg, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return Listen(addr, mux, logger)
}

// MetricsAddrFromEnv reads METRICS_ADDR. Unset, it is def (a loopback port
// of the service's own), or 127.0.0.1:0 when the API's address asks for a
// free port: a test or a second instance on one host must not collide on a
// fixed management port. METRICS_ADDR=off turns /metrics off ("").
func MetricsAddrFromEnv(r *envconf.Reader, apiAddr, def string) string {
	if _, port, err := net.SplitHostPort(apiAddr); err == nil && port == "0" {
		def = "127.0.0.1:0"
	}
	if addr := r.String("METRICS_ADDR", def); addr != "off" {
		return addr
	}
	return ""
}
