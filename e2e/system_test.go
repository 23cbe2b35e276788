package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/polltest"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/openapi/openapitest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	commandapi "github.com/cart-cqrs/cart/services/command/api"
	commandapp "github.com/cart-cqrs/cart/services/command/app"
	projectorapp "github.com/cart-cqrs/cart/services/projector/app"
	queryapi "github.com/cart-cqrs/cart/services/query/api"
	queryapp "github.com/cart-cqrs/cart/services/query/app"
)

const testSecret = "e2e-secret-0123456789abcdefghijklmnopqrstuvwxyz"

var testAuth = auth.Config{HS256Secret: []byte(testSecret), Issuer: "cart-cqrs-e2e", Audience: "cart-cqrs"}

// system is the three services running against one isolated set of
// PostgreSQL database, NATS stream and Redis key prefix.
type system struct {
	commandURL, queryURL, projectorURL string
	// The services' /metrics, on their management addresses.
	commandMetrics, queryMetrics, projectorMetrics string
	pool                                           *pgxpool.Pool
	stream                                         jetstream.Stream
	nats                                           natstest.Env
	redis                                          redistest.Env
}

type options struct {
	relayAfterPublish func(context.Context, []envelope.Envelope) error
	// nats replaces the test's own embedded NATS (natstest.MustNATS), and
	// commandVars and projectorVars override the environment of one
	// service (e.g. NATS credentials).
	nats                       *natstest.Env
	commandVars, projectorVars map[string]string
	// redis replaces the test's own Redis prefix, and queryVars overrides
	// the query service's environment.
	redis     *redistest.Env
	queryVars map[string]string
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// with returns a copy of vars with overrides applied, in order.
func with(vars map[string]string, overrides ...map[string]string) map[string]string {
	m := maps.Clone(vars)
	for _, o := range overrides {
		maps.Copy(m, o)
	}
	return m
}

// mustStart starts command, projector and query like `make run` does, each
// from the environment it would get in production, and stops them at cleanup.
func mustStart(tb testing.TB, opts options) *system {
	tb.Helper()
	pool, dbURL := pgtest.MustPool(tb)
	// Each service connects with only its own role's privileges, as a
	// least-privilege deployment does; the schema is already migrated. (The
	// users outlive the services: their cleanup is registered first.)
	commandDB, projectorDB := pgtest.MustRoleURL(tb, dbURL, "cart_command"), pgtest.MustRoleURL(tb, dbURL, "cart_projector")
	n := opts.nats
	if n == nil {
		env := natstest.MustNATS(tb)
		n = &env
	}
	r := opts.redis
	if r == nil {
		env := redistest.MustRedis(tb)
		r = &env
	}
	vars := map[string]string{
		"DATABASE_URL": dbURL, "NATS_URL": n.URL, "REDIS_URL": r.URL,
		"NATS_STREAM": n.Stream, "NATS_SUBJECT_PREFIX": n.SubjectPrefix, "NATS_DURABLE": "projector-" + n.Stream,
		"REDIS_PREFIX":      r.Prefix,
		"AUTH_HS256_SECRET": testSecret, "AUTH_ISSUER": testAuth.Issuer, "AUTH_AUDIENCE": testAuth.Audience,
		"COMMAND_ADDR": "127.0.0.1:0", "QUERY_ADDR": "127.0.0.1:0", "PROJECTOR_ADDR": "127.0.0.1:0",
		"RELAY_POLL_INTERVAL": "200ms",
		// The tests poll the query service far faster than a customer would.
		"RATE_LIMIT_RPS": "0",
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(name string, runFn func(context.Context) error, closeFn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runFn(ctx); err != nil {
				tb.Errorf("%s: run: %v", name, err)
			}
			if err := closeFn(); err != nil {
				tb.Errorf("%s: close: %v", name, err)
			}
		}()
	}
	tb.Cleanup(func() { cancel(); wg.Wait() })

	ccfg, err := commandapp.ConfigFromEnv(env(with(vars, map[string]string{"DATABASE_URL": commandDB, "MIGRATE": "false"}, opts.commandVars)))
	if err != nil {
		tb.Fatalf("command config: %v", err)
	}
	ccfg.RelayAfterPublish = opts.relayAfterPublish
	cmd, err := commandapp.New(ctx, ccfg, logger.With("service", "command"))
	if err != nil {
		tb.Fatalf("command: %v", err)
	}
	run("command", cmd.Run, cmd.Close)

	pcfg, err := projectorapp.ConfigFromEnv(env(with(vars, map[string]string{"DATABASE_URL": projectorDB}, opts.projectorVars)))
	if err != nil {
		tb.Fatalf("projector config: %v", err)
	}
	proj, err := projectorapp.New(ctx, pcfg, logger.With("service", "projector"))
	if err != nil {
		tb.Fatalf("projector: %v", err)
	}
	run("projector", proj.Run, proj.Close)

	qcfg, err := queryapp.ConfigFromEnv(env(with(vars, opts.queryVars)))
	if err != nil {
		tb.Fatalf("query config: %v", err)
	}
	qry, err := queryapp.New(ctx, qcfg, logger.With("service", "query"))
	if err != nil {
		tb.Fatalf("query: %v", err)
	}
	run("query", qry.Run, qry.Close)

	s := &system{
		commandURL: "http://" + cmd.Addr(), queryURL: "http://" + qry.Addr(), projectorURL: "http://" + proj.Addr(),
		commandMetrics: "http://" + cmd.MetricsAddr(), queryMetrics: "http://" + qry.MetricsAddr(), projectorMetrics: "http://" + proj.MetricsAddr(),
		pool: pool, nats: *n, redis: *r,
	}
	// Every answer the tests get from the two APIs must match its OpenAPI
	// document.
	client := openapitest.Client(tb, map[string]*openapi3.T{
		cmd.Addr(): openapitest.MustLoad(tb, commandapi.OpenAPI),
		qry.Addr(): openapitest.MustLoad(tb, queryapi.OpenAPI),
	})
	clients.Store(cmd.Addr(), client)
	clients.Store(qry.Addr(), client)
	tb.Cleanup(func() { clients.Delete(cmd.Addr()); clients.Delete(qry.Addr()) })
	eventually(tb, 20*time.Second, "stream created and services ready", func() error {
		st, err := n.JS.Stream(ctx, n.Stream)
		if err != nil {
			return err
		}
		s.stream = st
		for _, u := range []string{s.commandURL, s.queryURL, s.projectorURL} {
			resp, err := http.Get(u + "/readyz")
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s/readyz: %d", u, resp.StatusCode)
			}
		}
		return nil
	})
	return s
}

// clients holds, by host, the HTTP client that checks a system's answers
// against its OpenAPI documents.
var clients sync.Map

func clientFor(host string) *http.Client {
	if c, ok := clients.Load(host); ok {
		return c.(*http.Client)
	}
	return http.DefaultClient
}

// eventually polls check until it returns nil or the deadline passes.
func eventually(tb testing.TB, within time.Duration, what string, check func() error) {
	tb.Helper()
	polltest.Until(tb, within, what, check)
}

func token(tb testing.TB, subject, role string) string {
	tb.Helper()
	tok, err := auth.Issue(testAuth, subject, role, time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func do(tb testing.TB, method, url, tok string, body any) reply {
	tb.Helper()
	r, err := send(method, url, tok, body)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// send is do for goroutines other than the test's own, which must not call
// tb.Fatal.
func send(method, url, tok string, body any) (reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := clientFor(req.URL.Host).Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

type commandResult struct {
	CartID  string `json:"cartId"`
	Version int    `json:"version"`
}

// command POSTs a command and returns its result; a non-2xx status fails the test.
func (s *system) command(tb testing.TB, tok, path string, body any) commandResult {
	tb.Helper()
	r := do(tb, http.MethodPost, s.commandURL+path, tok, body)
	if r.Status/100 != 2 {
		tb.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
	}
	var res commandResult
	if err := json.Unmarshal(r.Body, &res); err != nil {
		tb.Fatalf("POST %s: %v in %s", path, err, r.Body)
	}
	if etag := r.Header.Get("ETag"); etag != strconv.Quote(strconv.Itoa(res.Version)) {
		tb.Errorf("POST %s: ETag %q for version %d", path, etag, res.Version)
	}
	return res
}

// awaitCart polls the query service until it serves the cart at version.
func (s *system) awaitCart(tb testing.TB, tok, cartID string, version int) readmodel.Cart {
	tb.Helper()
	var doc readmodel.Cart
	eventually(tb, 15*time.Second, "query serves cart "+cartID+" v"+strconv.Itoa(version), func() error {
		r := do(tb, http.MethodGet, s.queryURL+"/v1/carts/"+cartID, tok, nil)
		if r.Status != http.StatusOK {
			return fmt.Errorf("status %d: %s", r.Status, r.Body)
		}
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			return err
		}
		if doc.Version != version {
			return fmt.Errorf("version %d", doc.Version)
		}
		return nil
	})
	return doc
}

// replay is the read model the event log says a cart should have: the fold of
// its stored events.
func (s *system) replay(tb testing.TB, cartID string) (readmodel.Cart, []envelope.Envelope) {
	tb.Helper()
	evs, err := eventlog.ReadStream(context.Background(), s.pool, cartID, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	st := cart.State{}
	for _, e := range evs {
		r, err := e.Recorded()
		if err != nil {
			tb.Fatal(err)
		}
		st = cart.Evolve(st, r)
	}
	return readmodel.FromState(st), evs
}

// streamMessages returns every message in the test's stream, decoded, in
// stream order.
func (s *system) streamMessages(tb testing.TB) []envelope.Envelope {
	tb.Helper()
	ctx := context.Background()
	info, err := s.stream.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var out []envelope.Envelope
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			tb.Fatalf("stream message %d: %v", seq, err)
		}
		e, err := envelope.UnmarshalCloudEvent(m.Data)
		if err != nil {
			tb.Fatalf("stream message %d: %v", seq, err)
		}
		if id := m.Header.Get(jetstream.MsgIDHeader); id != e.EventID {
			tb.Errorf("stream message %d: Nats-Msg-Id %q, event id %q", seq, id, e.EventID)
		}
		out = append(out, e)
	}
	return out
}

func (s *system) outboxLen(tb testing.TB) int {
	tb.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
