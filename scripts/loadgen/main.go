// Command loadgen drives the cart's HTTP APIs with many simulated customers
// and reports throughput, latency percentiles (HDR histograms), failures and
// the end-to-end visibility lag, as JSON and as a summary:
//
//	go run ./scripts/loadgen -scenario mix -clients 16 -duration 30s
//	go run ./scripts/loadgen -scenario lag -mode open -rate 1000 -json lag.json
//
// Tokens are signed like `make token` does, with AUTH_HS256_SECRET,
// AUTH_ISSUER and AUTH_AUDIENCE from the environment (the Makefile exports
// the development values). A service with a per-customer rate limit
// (RATE_LIMIT_RPS) answers 429 once a customer goes faster than it allows:
// use more customers, or turn the limit off for a benchmark.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, env envconf.Env, stdout, stderr io.Writer) error {
	cfg, jsonOut, marks, err := parse(args, env, stderr)
	if err != nil {
		return err
	}
	if marks {
		// Before anything else on stdout: the summary follows the run.
		cfg.Marks = func(m load.Mark) { fmt.Fprintf(stdout, "%s%s\n", load.MarkPrefix, m) }
	}
	res, err := load.Run(ctx, cfg)
	if err != nil {
		return err
	}
	summary := stdout
	switch jsonOut {
	case "":
	case "-":
		summary = stderr
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	default:
		if err := writeJSONFile(jsonOut, res); err != nil {
			return err
		}
	}
	_, err = io.WriteString(summary, res.Summary())
	return err
}

// parse reads the flags and the AUTH_* environment into a run's Config;
// jsonOut is where the JSON result goes ("" nowhere, "-" stdout); marks
// asks for the window's marks on stdout.
func parse(args []string, env envconf.Env, stderr io.Writer) (cfg load.Config, jsonOut string, marks bool, err error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarios := slices.Sorted(maps.Keys(load.Scenarios))
	fs.StringVar(&cfg.CommandURL, "command-url", "http://127.0.0.1:8080", "command service base URL")
	fs.StringVar(&cfg.QueryURL, "query-url", "http://127.0.0.1:8081", "query service base URL (or the raw read baseline's)")
	fs.StringVar(&cfg.Scenario, "scenario", "mix", "what customers do: "+strings.Join(scenarios, ", "))
	mode := fs.String("mode", string(load.Closed), "closed (N clients back to back) or open (a fixed rate)")
	fs.IntVar(&cfg.Clients, "clients", 16, "concurrent clients (closed) or most requests in flight (open)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests per second")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured time before it")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "open loop: time allowed after the schedule to finish it")
	fs.IntVar(&cfg.Customers, "customers", 0, "distinct customers (default: 8 per client)")
	fs.StringVar(&cfg.CustomerPrefix, "customer-prefix", "", "customer id prefix (default: load-<random>)")
	fs.IntVar(&cfg.SetupLines, "setup-lines", 3, "reads: lines in each prepared cart")
	fs.BoolVar(&cfg.SyntheticCarts, "synthetic", false, "reads: read the synthetic carts of the raw read baseline instead of preparing real ones")
	products := fs.String("products", strings.Join(load.SeededProducts, ","), "products to add, comma-separated")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the customers' choices")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per request")
	fs.BoolVar(&cfg.Idempotency, "idempotency", false, "send an Idempotency-Key with every command")
	fs.StringVar(&jsonOut, "json", "", `write the result as JSON to this file ("-": stdout, the summary goes to stderr)`)
	fs.BoolVar(&marks, "marks", false, `print "`+load.MarkPrefix+`measuring" and "`+load.MarkPrefix+`measured" on stdout as the measured window opens and closes`)
	if err := fs.Parse(args); err != nil {
		return load.Config{}, "", false, err
	}
	if fs.NArg() > 0 {
		return load.Config{}, "", false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if marks && jsonOut == "-" {
		return load.Config{}, "", false, errors.New("-marks and -json - both want stdout")
	}
	mix, ok := load.Scenarios[cfg.Scenario]
	if !ok {
		return load.Config{}, "", false, fmt.Errorf("unknown scenario %q: want one of %s", cfg.Scenario, strings.Join(scenarios, ", "))
	}
	cfg.Mix, cfg.Mode = mix, load.Mode(*mode)
	cfg.Products = strings.Split(*products, ",")
	if cfg.Customers == 0 {
		cfg.Customers = 8 * cfg.Clients
	}
	if cfg.CustomerPrefix == "" {
		cfg.CustomerPrefix = "load-" + randomHex(4)
	}
	r := envconf.New(env)
	cfg.Auth = auth.Config{
		HS256Secret: r.Bytes("AUTH_HS256_SECRET"),
		Issuer:      r.String("AUTH_ISSUER", ""),
		Audience:    r.String("AUTH_AUDIENCE", ""),
	}
	if err := r.Err(); err != nil {
		return load.Config{}, "", false, err
	}
	return cfg, jsonOut, marks, cfg.Validate()
}

func writeJSONFile(path string, res load.Result) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("json: %w", cerr)
		}
	}()
	return writeJSON(f, res)
}

func writeJSON(w io.Writer, res load.Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
