package relay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/jsontest"
)

func TestRelay_PublishesEveryRowInCartOrder(t *testing.T) {
	f := newFixture(t)
	carts := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	var want []envelope.Envelope
	// Interleave the carts so that a round holds several events of each.
	for v := 0; v < 5; v++ {
		for _, c := range carts {
			want = append(want, appendEvents(t, f.pool, c, v, 1)...)
		}
	}
	f.opts.BatchSize = 7 // several rounds, several waves per round
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	start(t, r)

	eventually(t, 20*time.Second, "outbox empty", func() bool { return outboxLen(t, f.pool) == 0 })
	msgs := readStream(t, f.nats.JS, f.opts.Stream)
	if len(msgs) != len(want) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(want))
	}
	checkOncePerCartOrder(t, msgs, want)
	byID := make(map[string]envelope.Envelope)
	for _, e := range want {
		byID[e.EventID] = e
	}
	for _, m := range msgs {
		w := byID[m.env.EventID]
		if wantSubj := envelope.Subject(f.opts.SubjectPrefix, w.StreamID, w.Type); m.subject != wantSubj {
			t.Errorf("subject %q, want %q", m.subject, wantSubj)
		}
		if m.msgID != w.EventID {
			t.Errorf("Nats-Msg-Id %q, want %q", m.msgID, w.EventID)
		}
		// No tracing is installed in this test: the message carries the
		// appending request's stored trace context on as it is.
		if m.traceparent != w.Metadata.TraceParent {
			t.Errorf("traceparent header %q, want the stored %q", m.traceparent, w.Metadata.TraceParent)
		}
		if m.ctype != envelope.ContentType || m.source != f.opts.Source {
			t.Errorf("content type %q source %q", m.ctype, m.source)
		}
		got := m.env
		if got.StreamID != w.StreamID || got.Version != w.Version || got.Type != w.Type ||
			got.SchemaVersion != w.SchemaVersion || got.Metadata != w.Metadata || !got.OccurredAt.Equal(w.OccurredAt.Truncate(time.Microsecond)) {
			t.Errorf("envelope %+v, want %+v", got, w)
		}
		if !jsontest.Equal(got.Data, w.Data) {
			t.Errorf("data %s, want %s", got.Data, w.Data)
		}
	}
	eventually(t, 5*time.Second, "Published() counts every event", func() bool { return r.Published() == uint64(len(want)) })
}

func TestRelay_WakesOnNotify(t *testing.T) {
	f := newFixture(t)
	f.opts.PollInterval = time.Minute // only a NOTIFY can wake it in time
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	start(t, r)
	eventually(t, 10*time.Second, "leader", r.IsLeader)

	c := uuid.NewString()
	appendEvents(t, f.pool, c, 0, 1)
	eventually(t, 10*time.Second, "first event published", func() bool { return r.Published() == 1 })
	// The relay drained the outbox and waits for a notification now.
	appendEvents(t, f.pool, c, 1, 1)
	eventually(t, 10*time.Second, "event inserted while idle published", func() bool { return r.Published() == 2 })
	if n := streamMsgs(t, f.nats.JS, f.opts.Stream); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

func TestRelay_CrashBetweenPubAckAndRemoval(t *testing.T) {
	f := newFixture(t)
	var want []envelope.Envelope
	for range 4 {
		want = append(want, appendEvents(t, f.pool, uuid.NewString(), 0, 6)...)
	}
	const crashes = 3
	var calls atomic.Int32
	errCrash := errors.New("injected crash")
	f.opts.BatchSize = 5
	f.opts.AfterPublish = func(_ context.Context, published []envelope.Envelope) error {
		if len(published) == 0 {
			t.Error("AfterPublish called with nothing published")
		}
		if calls.Add(1) <= crashes {
			return errCrash
		}
		return nil
	}
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	start(t, r)

	eventually(t, 30*time.Second, "outbox empty", func() bool { return outboxLen(t, f.pool) == 0 })
	if got := calls.Load(); got <= crashes {
		t.Fatalf("AfterPublish called %d times, want more than %d", got, crashes)
	}
	msgs := readStream(t, f.nats.JS, f.opts.Stream)
	if len(msgs) != len(want) {
		t.Errorf("stream holds %d messages, want %d (one per event)", len(msgs), len(want))
	}
	checkOncePerCartOrder(t, msgs, want)
}

func TestRelay_OneLeaderAtATime(t *testing.T) {
	f := newFixture(t)
	a := New(f.pool, f.nats.JS, f.opts, testLogger(t).With("relay", "a"))
	b := New(f.pool, f.nats.JS, f.opts, testLogger(t).With("relay", "b"))
	stops := map[*Relay]func(){a: start(t, a), b: start(t, b)}

	// Sample both flags for the whole test.
	var both atomic.Int32
	samplerDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-samplerDone:
				return
			default:
			}
			if a.IsLeader() && b.IsLeader() {
				both.Add(1)
			}
			time.Sleep(100 * time.Microsecond) // sampling rate, not a wait
		}
	})
	defer func() {
		close(samplerDone)
		wg.Wait()
		if n := both.Load(); n > 0 {
			t.Errorf("both relays were leaders at %d sampled moments", n)
		}
	}()

	eventually(t, 10*time.Second, "a leader", func() bool { return a.IsLeader() || b.IsLeader() })
	leader, standby := a, b
	if b.IsLeader() {
		leader, standby = b, a
	}
	var want []envelope.Envelope
	want = append(want, appendEvents(t, f.pool, uuid.NewString(), 0, 3)...)
	eventually(t, 10*time.Second, "leader drains", func() bool { return outboxLen(t, f.pool) == 0 })
	if standby.Published() != 0 {
		t.Errorf("the standby published %d events", standby.Published())
	}

	stops[leader]()
	if leader.IsLeader() {
		t.Fatal("stopped relay still reports leadership")
	}
	want = append(want, appendEvents(t, f.pool, uuid.NewString(), 0, 3)...)
	eventually(t, 10*time.Second, "standby takes over", standby.IsLeader)
	eventually(t, 10*time.Second, "new leader drains", func() bool { return outboxLen(t, f.pool) == 0 })
	checkOncePerCartOrder(t, readStream(t, f.nats.JS, f.opts.Stream), want)
}

func TestRelay_TakesOverWhenLeaderConnectionDies(t *testing.T) {
	f := newFixture(t)
	a := New(f.pool, f.nats.JS, f.opts, testLogger(t).With("relay", "a"))
	b := New(f.pool, f.nats.JS, f.opts, testLogger(t).With("relay", "b"))
	start(t, a)
	start(t, b)
	eventually(t, 10*time.Second, "a leader", func() bool { return a.IsLeader() || b.IsLeader() })

	// Kill the session holding the lock, as a crashed process or a cut network would.
	ctx := context.Background()
	var killed bool
	err := f.pool.QueryRow(ctx, `
		SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
	).Scan(&killed)
	if err != nil || !killed {
		t.Fatalf("terminate leader session: killed=%v err=%v", killed, err)
	}
	want := appendEvents(t, f.pool, uuid.NewString(), 0, 4)
	eventually(t, 10*time.Second, "outbox drained after the leader's session died", func() bool { return outboxLen(t, f.pool) == 0 })
	eventually(t, 10*time.Second, "exactly one leader again", func() bool { return a.IsLeader() != b.IsLeader() })
	checkOncePerCartOrder(t, readStream(t, f.nats.JS, f.opts.Stream), want)
}

func TestRelay_OutOfOrderCommit(t *testing.T) {
	f := newFixture(t)
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	start(t, r)
	ctx := context.Background()

	txA, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := txA.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("rollback: %v", err)
		}
	}()
	evA := appendEvents(t, txA, uuid.NewString(), 0, 1)
	// Rounds go by while A is open, each with a later row committed: enough
	// for the relay's floor to pass A's position, were it careless.
	var evB []envelope.Envelope
	for i := range 6 {
		evB = append(evB, appendEvents(t, f.pool, uuid.NewString(), 0, 1)...) // commits at once
		eventually(t, 10*time.Second, "B published while A is open", func() bool { return r.Published() == uint64(i+1) })
	}
	if evB[0].Position <= evA[0].Position {
		t.Fatalf("positions A=%d B=%d, want A first", evA[0].Position, evB[0].Position)
	}

	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "A published after its commit", func() bool { return r.Published() == uint64(len(evB)+1) })
	eventually(t, 10*time.Second, "outbox empty", func() bool { return outboxLen(t, f.pool) == 0 })
	msgs := readStream(t, f.nats.JS, f.opts.Stream)
	checkOncePerCartOrder(t, msgs, append(evA, evB...))
	if len(msgs) == len(evB)+1 && msgs[len(evB)].env.EventID != evA[0].EventID {
		t.Errorf("stream ends with %s; want A (committed last)", msgs[len(evB)].env.EventID)
	}
}

// A cart whose event cannot be published blocks only itself, and only until
// the publish succeeds: its later events never overtake it.
func TestRelay_FailedPublishKeepsCartOrder(t *testing.T) {
	f := newFixture(t)
	blocked, other := uuid.NewString(), uuid.NewString()
	bigMD := envelope.Metadata{Actor: "customer", TraceState: "vendor=" + strings.Repeat("x", 2000)}
	want := appendEventsWith(t, f.pool, bigMD, blocked, 0, 1)
	want = append(want, appendEvents(t, f.pool, other, 0, 1)...)
	want = append(want, appendEvents(t, f.pool, blocked, 1, 2)...)
	want = append(want, appendEvents(t, f.pool, other, 1, 2)...)

	// The stream refuses the blocked cart's first message, and only that one.
	limitMessageSize(t, f, maxMsgSize)
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	for i, e := range want {
		m, err := r.message(e)
		if err != nil {
			t.Fatal(err)
		}
		if big := len(m.Data) > maxMsgSize; big != (i == 0) {
			t.Fatalf("test setup: message %d is %d bytes", i, len(m.Data))
		}
	}

	start(t, r)
	eventually(t, 10*time.Second, "the other cart published", func() bool { return r.Published() == 3 })
	if n := outboxLen(t, f.pool); n != 3 {
		t.Errorf("outbox holds %d rows, want the blocked cart's 3", n)
	}
	for _, m := range readStream(t, f.nats.JS, f.opts.Stream) {
		if m.env.StreamID == blocked {
			t.Errorf("blocked cart's version %d published before its version 1", m.env.Version)
		}
	}

	limitMessageSize(t, f, -1)
	eventually(t, 20*time.Second, "outbox drained once publishing works", func() bool { return outboxLen(t, f.pool) == 0 })
	checkOncePerCartOrder(t, readStream(t, f.nats.JS, f.opts.Stream), want)
}

func TestEnsureStream(t *testing.T) {
	f := newFixture(t) // already called EnsureStream with the defaults
	ctx := context.Background()
	opts := f.opts
	opts.DuplicateWindow = 2 * time.Minute
	for range 2 {
		s, err := EnsureStream(ctx, f.nats.JS, opts)
		if err != nil {
			t.Fatalf("EnsureStream: %v", err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c := info.Config
		if c.Name != opts.Stream || len(c.Subjects) != 1 || c.Subjects[0] != opts.SubjectPrefix+".>" ||
			c.Storage != jetstream.FileStorage || c.Duplicates != 2*time.Minute ||
			c.Retention != jetstream.LimitsPolicy || c.Replicas != 1 {
			t.Errorf("stream config %+v", c)
		}
	}
	s, err := EnsureStream(ctx, f.nats.JS, Options{Stream: opts.Stream, SubjectPrefix: opts.SubjectPrefix})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.CachedInfo().Config.Duplicates; d != DefaultDuplicateWindow {
		t.Errorf("duplicate window %s, want the default %s", d, DefaultDuplicateWindow)
	}
}

// With more carts than the in-flight window, a publish that fails in the
// middle of a cart's chain stops that cart at the failed event while the
// other chains go on through the window; once publishing works again, every
// cart's events are in the stream once, in version order.
func TestRelay_FailureMidWindowKeepsCartOrder(t *testing.T) {
	f := newFixture(t)
	bigMD := envelope.Metadata{Actor: "customer", TraceState: "vendor=" + strings.Repeat("x", 2000)}
	var want []envelope.Envelope
	failing := map[string]bool{}
	for i := range 12 {
		id := uuid.NewString()
		want = append(want, appendEvents(t, f.pool, id, 0, 1)...)
		if i%3 == 0 { // the second event of every third cart is refused
			failing[id] = true
			want = append(want, appendEventsWith(t, f.pool, bigMD, id, 1, 1)...)
		} else {
			want = append(want, appendEvents(t, f.pool, id, 1, 1)...)
		}
		want = append(want, appendEvents(t, f.pool, id, 2, 1)...)
	}

	limitMessageSize(t, f, maxMsgSize)
	opts := f.opts
	opts.MaxInFlight = 3
	r := New(f.pool, f.nats.JS, opts, testLogger(t))
	start(t, r)
	eventually(t, 10*time.Second, "the other carts published", func() bool { return r.Published() == 8*3+4 })
	for _, m := range readStream(t, f.nats.JS, f.opts.Stream) {
		if failing[m.env.StreamID] && m.env.Version > 1 {
			t.Errorf("cart %s: version %d published although version 2 failed", m.env.StreamID, m.env.Version)
		}
	}
	if n := outboxLen(t, f.pool); n != 4*2 {
		t.Errorf("outbox holds %d rows, want the failing carts' 8", n)
	}

	limitMessageSize(t, f, -1)
	eventually(t, 20*time.Second, "outbox drained once publishing works", func() bool { return outboxLen(t, f.pool) == 0 })
	checkOncePerCartOrder(t, readStream(t, f.nats.JS, f.opts.Stream), want)
}
