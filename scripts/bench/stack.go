package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/procs"
	"github.com/cart-cqrs/cart/scripts/bench/report"
)

// The benchmark's own stream, subjects and consumer, so that nothing it
// does meets `make run` or the tests.
const (
	natsStream        = "CART_BENCH"
	natsSubjectPrefix = "bench.cart.events"
	natsDurable       = "cart-bench-projector"
)

const (
	readyTimeout   = 60 * time.Second
	stopTimeout    = 30 * time.Second
	sampleInterval = 250 * time.Millisecond
)

// stack is the system under test: the command, projector and query
// binaries of make build, each on a free loopback port, over the
// benchmark's database, NATS stream and Redis prefix.
type stack struct {
	cfg     config
	bin     string // where the copied binaries are
	logDir  string
	natsURL string
	addrs   map[string]string
	debug   map[string]string // each service's DEBUG_ADDR (the Go profiler)
	metrics map[string]string // each service's METRICS_ADDR (/metrics)

	running  map[string]*procs.Proc
	samplers map[string]*procs.Sampler
	wg       sync.WaitGroup
	stopSamp map[string]context.CancelFunc
}

func newStack(cfg config, bin, logDir, natsURL string) (*stack, error) {
	s := &stack{cfg: cfg, bin: bin, logDir: logDir, natsURL: natsURL, addrs: map[string]string{}, debug: map[string]string{}, metrics: map[string]string{},
		running: map[string]*procs.Proc{}, samplers: map[string]*procs.Sampler{}, stopSamp: map[string]context.CancelFunc{}}
	for _, svc := range []string{report.ServiceCommand, report.ServiceProjector, report.ServiceQuery} {
		addr, err := procs.FreeAddr()
		if err != nil {
			return nil, err
		}
		s.addrs[svc] = addr
		if s.debug[svc], err = procs.FreeAddr(); err != nil {
			return nil, err
		}
		// A port of its own, not the service's default management port,
		// which a `make run` on the same machine holds.
		if s.metrics[svc], err = procs.FreeAddr(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// baseEnv is the little of the benchmark's own environment a child needs;
// nothing else leaks in, so a stray variable cannot change what is measured.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// env is every service's configuration: the services read what concerns
// them. The per-customer rate limit is off: the load generator is many
// customers, but not as many as a shop. Each service serves the Go profiler
// on a port of its own (DEBUG_ADDR, set by start).
func (s *stack) env(extra ...string) []string {
	return append(append(baseEnv(),
		"DATABASE_URL="+s.cfg.DatabaseURL,
		"NATS_URL="+s.natsURL,
		"REDIS_URL="+s.cfg.RedisURL,
		"REDIS_PREFIX="+s.cfg.RedisPrefix,
		"NATS_STREAM="+natsStream,
		"NATS_SUBJECT_PREFIX="+natsSubjectPrefix,
		"NATS_DURABLE="+natsDurable,
		"COMMAND_ADDR="+s.addrs[report.ServiceCommand],
		"QUERY_ADDR="+s.addrs[report.ServiceQuery],
		"PROJECTOR_ADDR="+s.addrs[report.ServiceProjector],
		"AUTH_HS256_SECRET="+s.cfg.AuthSecret,
		"AUTH_ISSUER="+s.cfg.AuthIssuer,
		"AUTH_AUDIENCE="+s.cfg.AuthAudience,
		"RATE_LIMIT_RPS=0",
		"LOG_LEVEL=warn",
		"LOG_FORMAT=json",
	), extra...)
}

func (s *stack) url(service string) string { return "http://" + s.addrs[service] }

// debugURL is where the service serves /debug/pprof/.
func (s *stack) debugURL(service string) string { return "http://" + s.debug[service] }

func (s *stack) binary(service string) string { return filepath.Join(s.bin, service) }

// start starts a service, waits until it is ready and samples its memory.
func (s *stack) start(ctx context.Context, service string) error {
	p, err := procs.Start(service, s.binary(service), nil, s.env("DEBUG_ADDR="+s.debug[service], "METRICS_ADDR="+s.metrics[service]), s.logDir)
	if err != nil {
		return err
	}
	if err := p.WaitHTTP(ctx, s.url(service)+"/readyz", readyTimeout); err != nil {
		return errors.Join(err, p.Stop(stopTimeout))
	}
	s.running[service] = p
	sctx, cancel := context.WithCancel(ctx)
	sampler := procs.NewSampler(p.Pid(), sampleInterval)
	s.samplers[service], s.stopSamp[service] = sampler, cancel
	s.wg.Go(func() { sampler.Run(sctx) })
	return nil
}

// startAll starts the services in the order they depend on each other: the
// command service owns the schema and the stream.
func (s *stack) startAll(ctx context.Context) error {
	for _, svc := range []string{report.ServiceCommand, report.ServiceProjector, report.ServiceQuery} {
		if err := s.start(ctx, svc); err != nil {
			return fmt.Errorf("start %s: %w", svc, err)
		}
	}
	return nil
}

// memory is a running service's memory in a phase: its peak since it
// started (VmHWM) and the largest resident set sampled.
func (s *stack) memory(service, phase string) (report.ServiceMemory, error) {
	p, ok := s.running[service]
	if !ok {
		return report.ServiceMemory{}, fmt.Errorf("memory: %s is not running", service)
	}
	m, err := procs.ReadMemory(p.Pid())
	if err != nil {
		return report.ServiceMemory{}, err
	}
	m.RSSKB = max(m.RSSKB, s.samplers[service].Peak().RSSKB)
	return report.ServiceMemory{Service: service, Phase: phase, Memory: m}, nil
}

// stop stops one service and its sampler.
func (s *stack) stop(service string) error {
	p, ok := s.running[service]
	if !ok {
		return nil
	}
	delete(s.running, service)
	s.stopSamp[service]()
	return p.Stop(stopTimeout)
}

// stopAll stops every running service, the readers first, and waits for the
// samplers.
func (s *stack) stopAll() error {
	var errs []error
	for _, svc := range []string{report.ServiceQuery, report.ServiceProjector, report.ServiceCommand} {
		errs = append(errs, s.stop(svc))
	}
	s.wg.Wait()
	return errors.Join(errs...)
}
