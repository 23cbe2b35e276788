// Command rawread is the raw read path the query service is measured
// against: a bare echo handler that answers GET /v1/carts/{id} with one
// go-redis GET of a cart-sized document — no token check, no generation
// lookup, no decoding. It seeds the synthetic carts the load generator reads
// with -synthetic, and deletes them when it stops.
//
//	rawread -addr 127.0.0.1:18090 -carts 1000 -prefix bench-raw:
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "rawread:", err)
		}
		os.Exit(1)
	}
}

type config struct {
	addr, redisURL, prefix, customerPrefix string
	carts                                  int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("rawread", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8090", "listen address")
	fs.StringVar(&cfg.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis")
	fs.StringVar(&cfg.prefix, "prefix", "cart-rawread:", "key prefix of the seeded documents")
	fs.StringVar(&cfg.customerPrefix, "customer-prefix", "raw", "customer id prefix inside the documents")
	fs.IntVar(&cfg.carts, "carts", 1000, "synthetic carts to seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, err := redis.ParseURL(cfg.redisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer func() {
		if cerr := rdb.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("redis: close: %w", cerr))
		}
	}()
	if err := seed(ctx, rdb, cfg); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, unseed(cctx, rdb, cfg))
	}()
	return serve(ctx, cfg.addr, handler(rdb, cfg.prefix), stdout)
}

// handler is the whole read path: one GET, the bytes as they are.
func handler(rdb *redis.Client, prefix string) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/v1/carts/:cartId", func(c echo.Context) error {
		doc, err := rdb.Get(c.Request().Context(), prefix+c.Param("cartId")).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			return c.NoContent(http.StatusNotFound)
		case err != nil:
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, doc)
	})
	e.GET("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	return e
}

// serve listens first, so that a taken port fails at once, then serves
// until ctx ends and shuts down gracefully.
func serve(ctx context.Context, addr string, h http.Handler, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(stdout, "rawread listening on %s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// seed writes the synthetic carts' documents, a thousand per round trip.
func seed(ctx context.Context, rdb *redis.Client, cfg config) error {
	const batch = 1000
	for from := 0; from < cfg.carts; from += batch {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := from; i < min(from+batch, cfg.carts); i++ {
				doc, err := load.SyntheticCart(i, load.CustomerID(cfg.customerPrefix, i))
				if err != nil {
					return err
				}
				p.Set(ctx, cfg.prefix+load.SyntheticCartID(i), doc, 0)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

func unseed(ctx context.Context, rdb *redis.Client, cfg config) error {
	const batch = 1000
	for from := 0; from < cfg.carts; from += batch {
		keys := make([]string, 0, batch)
		for i := from; i < min(from+batch, cfg.carts); i++ {
			keys = append(keys, cfg.prefix+load.SyntheticCartID(i))
		}
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			return fmt.Errorf("unseed: %w", err)
		}
	}
	return nil
}
