package httpserver

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"
)

// ListenDebug binds addr for the Go profiler (net/http/pprof under
// /debug/pprof/). It is a listener of its own, never the API's port, so that
// profiles are reachable only where ops bind it — loopback or a cluster-
// internal port. An empty addr turns it off: nil, nil.
func ListenDebug(addr string, logger *slog.Logger) (*Server, error) {
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// A CPU profile or trace streams for its ?seconds= (30 by default).
	return Listen(addr, mux, logger, WithTimeouts(Timeouts{Write: 5 * time.Minute}))
}
