package httpserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cart-cqrs/cart/pkg/envconf"
)

// ShutdownTimeout bounds how long Run waits for in-flight requests after its
// context ends.
const ShutdownTimeout = 10 * time.Second

// Timeouts bound how long a client may hold a connection at each stage; the
// read-header and idle timeouts stop slow or idle clients from pinning
// connections (slowloris).
type Timeouts struct {
	ReadHeader time.Duration // to read the request line and headers
	Read       time.Duration // to read the whole request, body included
	Write      time.Duration // from the end of the headers to the end of the response
	Idle       time.Duration // a keep-alive connection waits for the next request
}

// DefaultTimeouts are what Listen uses unless told otherwise. Read bounds
// the whole request, body included, so that a body trickling in a byte a
// second holds a connection for seconds, not for as long as it likes.
var DefaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second}

// TimeoutsFromEnv reads HTTP_READ_TIMEOUT (the whole request, body
// included; default DefaultTimeouts.Read). Other fields stay zero, which
// WithTimeouts reads as their default.
func TimeoutsFromEnv(r *envconf.Reader) Timeouts {
	return Timeouts{Read: r.Duration("HTTP_READ_TIMEOUT", DefaultTimeouts.Read)}
}

// Validate refuses negative timeouts (zero means the default).
func (t Timeouts) Validate() error {
	if t.ReadHeader < 0 || t.Read < 0 || t.Write < 0 || t.Idle < 0 {
		return fmt.Errorf("http timeouts %+v: want 0 (the default) or more; HTTP_READ_TIMEOUT e.g. 15s", t)
	}
	return nil
}

// MaxHeaderBytes bounds the request line and headers (431 beyond).
const MaxHeaderBytes = 64 << 10

// ListenOption tunes Listen.
type ListenOption func(*http.Server)

// WithTimeouts replaces DefaultTimeouts; zero fields keep their default.
func WithTimeouts(t Timeouts) ListenOption {
	return func(s *http.Server) {
		s.ReadHeaderTimeout = cmp.Or(t.ReadHeader, s.ReadHeaderTimeout)
		s.ReadTimeout = cmp.Or(t.Read, s.ReadTimeout)
		s.WriteTimeout = cmp.Or(t.Write, s.WriteTimeout)
		s.IdleTimeout = cmp.Or(t.Idle, s.IdleTimeout)
	}
}

// Server is an HTTP server whose port is already bound.
type Server struct {
	srv    *http.Server
	ln     net.Listener
	logger *slog.Logger
}

// Listen binds addr now, so a taken port fails here and not later in a
// goroutine, and returns a Server ready to Run h.
func Listen(addr string, h http.Handler, logger *slog.Logger, opts ...ListenOption) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("httpserver: listen %s: %w", addr, err)
	}
	ln = framingListener{ln}
	srv := &http.Server{
		Handler:           guardFraming(h),
		ConnContext:       connContext,
		ReadHeaderTimeout: DefaultTimeouts.ReadHeader,
		ReadTimeout:       DefaultTimeouts.Read,
		WriteTimeout:      DefaultTimeouts.Write,
		IdleTimeout:       DefaultTimeouts.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	for _, opt := range opts {
		opt(srv)
	}
	return &Server{ln: ln, logger: logger, srv: srv}, nil
}

// Addr is the bound address, e.g. "127.0.0.1:41234" after Listen(":0").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then stops accepting, lets in-flight requests
// finish (up to ShutdownTimeout) and returns nil. It returns an error if
// serving fails or the drain times out. Call it once.
func (s *Server) Run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	s.logger.LogAttrs(ctx, slog.LevelInfo, "http server listening", slog.String("addr", s.Addr()))

	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil // Close was called
		}
		return fmt.Errorf("httpserver: serve %s: %w", s.Addr(), err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	<-served // Serve returns as soon as Shutdown starts; reap the goroutine
	if err != nil {
		return fmt.Errorf("httpserver: shutdown %s: %w", s.Addr(), errors.Join(err, s.srv.Close()))
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "http server stopped", slog.String("addr", s.Addr()))
	return nil
}

// Close stops the server at once, dropping in-flight requests, and releases
// the port; for a Server that never ran or must stop now. Prefer cancelling
// Run's context.
func (s *Server) Close() error {
	err := s.srv.Close()
	if lerr := s.ln.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) {
		err = errors.Join(err, lerr)
	}
	if err != nil {
		return fmt.Errorf("httpserver: close %s: %w", s.Addr(), err)
	}
	return nil
}
