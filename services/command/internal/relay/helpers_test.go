package relay

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/polltest"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/natstest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
)

// fixture is one test's database, NATS stream and relay options.
type fixture struct {
	pool *pgxpool.Pool
	nats natstest.Env
	opts Options
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	pool, _ := pgtest.MustPool(t)
	env := natstest.MustNATS(t)
	f := fixture{pool: pool, nats: env, opts: Options{
		Stream:          env.Stream,
		SubjectPrefix:   env.SubjectPrefix,
		Source:          "urn:cart-cqrs:test",
		PollInterval:    100 * time.Millisecond,
		StandbyInterval: 50 * time.Millisecond,
	}}
	if _, err := EnsureStream(context.Background(), env.JS, f.opts); err != nil {
		t.Fatal(err)
	}
	return f
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// start runs r until the returned stop (also a cleanup) is called; stop
// waits for Run to return and checks it returned nil.
func start(t testing.TB, r *Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	polltest.True(t, within, what, cond)
}

// querier is a pool or an open transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// appendEvents writes events fromVersion+1 .. fromVersion+n of a cart and
// their outbox rows, as the command service does (with q being its
// transaction), and returns them with their positions.
func appendEvents(t testing.TB, q querier, cartID string, fromVersion, n int) []envelope.Envelope {
	t.Helper()
	md := envelope.Metadata{Actor: "customer", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	return appendEventsWith(t, q, md, cartID, fromVersion, n)
}

// appendEventsWith is appendEvents with the given metadata (plus a fresh
// correlation id per event).
func appendEventsWith(t testing.TB, q querier, md envelope.Metadata, cartID string, fromVersion, n int) []envelope.Envelope {
	t.Helper()
	return insertEvents(t, q, md, cartID, fromVersion, n, true)
}

// appendQuietly is appendEvents without the notification: as a commit of
// the command instance whose relay leads, which hands the events over
// instead (Committed).
func appendQuietly(t testing.TB, q querier, cartID string, fromVersion, n int) []envelope.Envelope {
	t.Helper()
	md := envelope.Metadata{Actor: "customer", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	return insertEvents(t, q, md, cartID, fromVersion, n, false)
}

func insertEvents(t testing.TB, q querier, md envelope.Metadata, cartID string, fromVersion, n int, notify bool) []envelope.Envelope {
	t.Helper()
	ctx := context.Background()
	var out []envelope.Envelope
	for v := fromVersion + 1; v <= fromVersion+n; v++ {
		var ev cart.Event = cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: v}
		if v == 1 {
			ev = cart.Opened{CustomerID: "customer-" + cartID[:8]}
		}
		md.CorrelationID = uuid.NewString()
		e, err := envelope.New(mustV7(t), cartID, v, ev, md, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		err = q.QueryRow(ctx, `
			INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING position`,
			e.EventID, e.StreamID, e.StreamType, e.Version, e.Type, e.SchemaVersion, e.Data, e.Metadata, e.OccurredAt,
		).Scan(&e.Position)
		if err != nil {
			t.Fatalf("insert event: %v", err)
		}
		if _, err := q.Exec(ctx, `INSERT INTO outbox (position) VALUES ($1)`, e.Position); err != nil {
			t.Fatalf("insert outbox row: %v", err)
		}
		// As a command instance whose relay does not lead: notify the
		// leader, on commit.
		if notify {
			if _, err := q.Exec(ctx, `SELECT pg_notify($1, '')`, eventlog.OutboxChannel); err != nil {
				t.Fatalf("notify: %v", err)
			}
		}
		out = append(out, e)
	}
	return out
}

func mustV7(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func outboxLen(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatalf("count outbox: %v", err)
	}
	return n
}

// streamMsg is one stored message, decoded.
type streamMsg struct {
	seq     uint64
	subject string
	msgID   string
	ctype   string
	env     envelope.Envelope
	source  string
	// traceparent is the message's W3C trace context header.
	traceparent string
}

// readStream returns every message of the stream in stream order.
func readStream(t testing.TB, js jetstream.JetStream, stream string) []streamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var out []streamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get msg %d: %v", seq, err)
		}
		e, err := envelope.UnmarshalCloudEvent(m.Data)
		if err != nil {
			t.Fatalf("msg %d is not a cart cloudevent: %v\n%s", seq, err, m.Data)
		}
		var raw struct {
			Source string `json:"source"`
		}
		if err := json.Unmarshal(m.Data, &raw); err != nil {
			t.Fatal(err)
		}
		out = append(out, streamMsg{seq: seq, subject: m.Subject, msgID: m.Header.Get(jetstream.MsgIDHeader),
			ctype: m.Header.Get("Content-Type"), env: e, source: raw.Source, traceparent: m.Header.Get("traceparent")})
	}
	return out
}

// streamMsgs is the stream's message count.
func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// checkOncePerCartOrder asserts that the stream holds each of want exactly
// once and every cart's events in version order.
func checkOncePerCartOrder(t testing.TB, msgs []streamMsg, want []envelope.Envelope) {
	t.Helper()
	byID := make(map[string]envelope.Envelope, len(want))
	for _, e := range want {
		byID[e.EventID] = e
	}
	seen := make(map[string]bool)
	lastVersion := make(map[string]int)
	for _, m := range msgs {
		if seen[m.env.EventID] {
			t.Errorf("event %s is in the stream twice", m.env.EventID)
		}
		seen[m.env.EventID] = true
		if _, ok := byID[m.env.EventID]; !ok {
			t.Errorf("unexpected event %s in the stream", m.env.EventID)
		}
		if m.env.Version <= lastVersion[m.env.StreamID] {
			t.Errorf("cart %s: version %d after version %d", m.env.StreamID, m.env.Version, lastVersion[m.env.StreamID])
		}
		lastVersion[m.env.StreamID] = m.env.Version
	}
	for id := range byID {
		if !seen[id] {
			t.Errorf("event %s was never published", id)
		}
	}
}

// maxMsgSize is a limit on the stream's messages that a message with a
// 2000-byte trace state exceeds and the others do not.
const maxMsgSize = 1500

// limitMessageSize makes the stream refuse messages of more than n bytes
// (-1: any size).
func limitMessageSize(t testing.TB, f fixture, n int32) {
	t.Helper()
	ctx := context.Background()
	s, err := f.nats.JS.Stream(ctx, f.opts.Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = n
	if _, err := f.nats.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}
