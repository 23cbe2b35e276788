package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/polltest"
	"github.com/cart-cqrs/cart/pkg/redistest"
	commandapp "github.com/cart-cqrs/cart/services/command/app"
)

// OracleApplicationName is the PostgreSQL application_name of the test's
// own sessions.
const OracleApplicationName = "chaos-oracle"

// Options shape one System.
type Options struct {
	// Projectors is how many projector processes share the consumer
	// (default 1).
	Projectors int
	// StandbyCommands is how many more command processes run beside the
	// first (their relays stand by while another leads); not with
	// InProcessCommand.
	StandbyCommands int
	// CommandEnv and ProjectorEnv are added to those services' environment.
	CommandEnv, ProjectorEnv []string
	// InProcessCommand, when set, runs the command service inside the test
	// process (for its fault-injection hooks) instead of the binary; it
	// may change the configuration read from the same environment.
	InProcessCommand func(*commandapp.Config)
	// RedisURL is a Redis server of the test's own (one it restarts);
	// empty means the shared test server with a fresh key prefix.
	RedisURL string
	// Toxi routes every connection to PostgreSQL, NATS and Redis through
	// toxiproxy, so the test can slow, stall and break them.
	Toxi bool
}

// System is the three services running as processes against one isolated
// PostgreSQL database, NATS server and stream, and Redis key prefix.
type System struct {
	Mode Mode
	Auth auth.Config

	DatabaseURL string
	Pool        *pgxpool.Pool
	NATS        *NATS
	NC          *nats.Conn
	JS          jetstream.JetStream
	Stream      string
	Subjects    string // the subject prefix
	Durable     string
	RedisURL    string
	Prefix      string
	Redis       *redis.Client
	Toxi        *Toxi // nil unless Options.Toxi

	// Command is nil when the command service runs in process.
	Command    *Process
	CommandURL string
	// Commands are all command processes: Command and the standbys.
	Commands   []*Process
	Projectors []*Process
	Query      *Process
	// ProjectorEnv is the projectors' environment (besides the process's
	// own), for running `projector rebuild` as an operator would.
	ProjectorEnv []string

	// losses are the times the stream lost messages, for the oracle.
	losses []StreamLoss
}

// Start builds and starts a System; everything is stopped and removed when
// the test ends.
func Start(tb testing.TB, bin Binaries, mode Mode, opts Options) *System {
	tb.Helper()
	if opts.Projectors == 0 {
		opts.Projectors = 1
	}
	id := randomHex(6)
	s := &System{
		Mode:     mode,
		Auth:     auth.Config{HS256Secret: []byte("chaos-" + randomHex(24)), Issuer: "cart-cqrs-chaos", Audience: "cart-cqrs"},
		Stream:   "CHAOS_" + strings.ToUpper(id),
		Subjects: "chaos" + id + ".cart.events",
		Durable:  "projector-" + id,
	}
	dbURL := pgtest.MustDatabase(tb)
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		tb.Fatalf("chaos: database url: %v", err)
	}
	// The faults that end sessions spare the oracle's, by this name.
	pcfg.ConnConfig.RuntimeParams["application_name"] = OracleApplicationName
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		tb.Fatalf("chaos: pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	s.Pool, s.DatabaseURL = pool, dbURL

	n, err := StartNATS(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	s.NATS = n
	tb.Cleanup(n.Shutdown)

	if opts.RedisURL != "" {
		ropts, err := redis.ParseURL(opts.RedisURL)
		if err != nil {
			tb.Fatalf("chaos: redis url: %v", err)
		}
		s.RedisURL, s.Prefix, s.Redis = opts.RedisURL, "chaos:"+id+":", redis.NewClient(ropts)
		tb.Cleanup(func() {
			if err := s.Redis.Close(); err != nil {
				tb.Errorf("chaos: close redis: %v", err)
			}
		})
	} else {
		r := redistest.MustRedis(tb)
		s.RedisURL, s.Prefix, s.Redis = r.URL, r.Prefix, r.Client
	}

	s.NC, err = nats.Connect(n.URL(), nats.Name("chaos oracle"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		tb.Fatalf("chaos: nats connect: %v", err)
	}
	tb.Cleanup(s.NC.Close)
	if s.JS, err = jetstream.New(s.NC); err != nil {
		tb.Fatalf("chaos: jetstream: %v", err)
	}

	dbFor, natsFor, redisFor := dbURL, n.URL(), s.RedisURL
	if opts.Toxi {
		s.Toxi = StartToxi(tb, map[string]string{
			"postgres": hostPort(tb, dbURL), "nats": hostPort(tb, n.URL()), "redis": hostPort(tb, s.RedisURL),
		})
		dbFor = withHost(tb, dbURL, s.Toxi.Addr("postgres"))
		natsFor = withHost(tb, n.URL(), s.Toxi.Addr("nats"))
		redisFor = withHost(tb, s.RedisURL, s.Toxi.Addr("redis"))
	}
	env := []string{
		"DATABASE_URL=" + dbFor, "NATS_URL=" + natsFor, "REDIS_URL=" + redisFor, "REDIS_PREFIX=" + s.Prefix,
		"NATS_STREAM=" + s.Stream, "NATS_SUBJECT_PREFIX=" + s.Subjects, "NATS_DURABLE=" + s.Durable,
		"AUTH_HS256_SECRET=" + string(s.Auth.HS256Secret), "AUTH_ISSUER=" + s.Auth.Issuer, "AUTH_AUDIENCE=" + s.Auth.Audience,
		"RATE_LIMIT_RPS=0", "RELAY_POLL_INTERVAL=200ms", "LOG_LEVEL=warn", "LOG_FORMAT=text",
	}
	logs := tb.TempDir()
	newProc := func(name, path, addrVar string, extra []string) *Process {
		addr, err := FreeAddr()
		if err != nil {
			tb.Fatal(err)
		}
		metrics, err := FreeAddr()
		if err != nil {
			tb.Fatal(err)
		}
		e := append(append(append([]string{}, env...), addrVar+"="+addr, "METRICS_ADDR="+metrics), extra...)
		p := NewProcess(name, path, addr, filepath.Join(logs, name+".log"), e)
		p.MetricsAddr = metrics
		return p
	}

	var all []*Process
	tb.Cleanup(func() { s.stop(tb, all) })
	if opts.InProcessCommand != nil {
		addr, err := FreeAddr()
		if err != nil {
			tb.Fatal(err)
		}
		s.CommandURL = "http://" + addr
		metrics, err := FreeAddr()
		if err != nil {
			tb.Fatal(err)
		}
		s.runInProcessCommand(tb, append(append(append([]string{}, env...), "COMMAND_ADDR="+addr, "METRICS_ADDR="+metrics), opts.CommandEnv...), opts.InProcessCommand)
	} else {
		s.Command = newProc("command", bin.Command, "COMMAND_ADDR", opts.CommandEnv)
		s.CommandURL = s.Command.URL()
		all = append(all, s.Command)
		if err := s.Command.Start(); err != nil {
			tb.Fatal(err)
		}
	}
	// The command service creates the stream the projectors attach to.
	polltest.Until(tb, 60*time.Second, "command service ready", func() error { return s.commandReady() })
	if s.Command != nil {
		s.Commands = append(s.Commands, s.Command)
	}
	for i := range opts.StandbyCommands {
		c := newProc(fmt.Sprintf("command-%d", i+2), bin.Command, "COMMAND_ADDR", opts.CommandEnv)
		s.Commands = append(s.Commands, c)
		all = append(all, c)
		if err := c.Start(); err != nil {
			tb.Fatal(err)
		}
	}
	s.ProjectorEnv = append(append([]string{}, env...), opts.ProjectorEnv...)
	for i := range opts.Projectors {
		p := newProc(fmt.Sprintf("projector-%d", i+1), bin.Projector, "PROJECTOR_ADDR", opts.ProjectorEnv)
		s.Projectors = append(s.Projectors, p)
	}
	s.Query = newProc("query", bin.Query, "QUERY_ADDR", nil)
	for _, p := range append(append([]*Process{}, s.Projectors...), s.Query) {
		all = append(all, p)
		if err := p.Start(); err != nil {
			tb.Fatal(err)
		}
	}
	s.AwaitReady(tb)
	return s
}

// AwaitReady waits until every running service answers /readyz.
func (s *System) AwaitReady(tb testing.TB) {
	tb.Helper()
	polltest.Until(tb, 60*time.Second, "services ready", func() error {
		if err := s.commandReady(); err != nil {
			return err
		}
		for _, p := range append(append(append([]*Process{}, s.Commands...), s.Projectors...), s.Query) {
			if err := p.Ready(context.Background()); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *System) commandReady() error {
	if s.Command != nil {
		return s.Command.Ready(context.Background())
	}
	_, status, err := get(context.Background(), s.CommandURL+"/readyz")
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("command /readyz: %d", status)
	}
	return nil
}

// Processes are the service processes (the command's unless in process).
func (s *System) Processes() []*Process {
	ps := append([]*Process{}, s.Commands...)
	return append(append(ps, s.Projectors...), s.Query)
}

// runInProcessCommand starts the command app in this process.
func (s *System) runInProcessCommand(tb testing.TB, env []string, change func(*commandapp.Config)) {
	tb.Helper()
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	cfg, err := commandapp.ConfigFromEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		tb.Fatalf("chaos: command config: %v", err)
	}
	change(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	a, err := commandapp.New(ctx, cfg, logger.With("service", "command"))
	if err != nil {
		cancel()
		tb.Fatalf("chaos: command: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.Run(ctx); err != nil {
			tb.Errorf("chaos: command run: %v", err)
		}
		if err := a.Close(); err != nil {
			tb.Errorf("chaos: command close: %v", err)
		}
	})
	tb.Cleanup(func() { cancel(); wg.Wait() })
}

// stop ends every process gracefully and reports crashes, data races and,
// when the test failed, the end of each log.
func (s *System) stop(tb testing.TB, ps []*Process) {
	for _, p := range ps {
		if err := p.Stop(20 * time.Second); err != nil {
			tb.Errorf("%v", err)
		}
	}
	for _, p := range ps {
		for _, u := range p.Unexpected() {
			tb.Errorf("chaos: %s", u)
		}
		if log := p.Log(); strings.Contains(log, "WARNING: DATA RACE") {
			_, race, _ := strings.Cut(log, "WARNING: DATA RACE")
			tb.Errorf("chaos: %s reported a data race:\n%.20000s", p.Name, race)
		}
		if tb.Failed() {
			tb.Logf("---- last lines of %s ----\n%s", p.Name, p.LogTail(40))
		}
	}
}

// Token signs a bearer token for a customer.
func (s *System) Token(tb testing.TB, customer string) string {
	tb.Helper()
	tok, err := auth.Issue(s.Auth, customer, "", 2*time.Hour, time.Now())
	if err != nil {
		tb.Fatalf("chaos: token: %v", err)
	}
	return tok
}

func hostPort(tb testing.TB, raw string) string {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		tb.Fatalf("chaos: %q is not a URL with a host: %v", raw, err)
	}
	return u.Host
}

func withHost(tb testing.TB, raw, host string) string {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("chaos: %q: %v", raw, err)
	}
	u.Host = host
	return u.String()
}
