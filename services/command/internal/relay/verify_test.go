package relay

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/pgtest"
)

// lossyNATS is an embedded JetStream server of the test's own, whose store
// can be copied while it runs and put back: what a server that lost power
// after its last fsync, or whose volume was restored, comes back with.
type lossyNATS struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

func startLossyNATS(t testing.TB) *lossyNATS {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	n := &lossyNATS{t: t, opts: server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	}}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *lossyNATS) start() {
	n.t.Helper()
	opts := n.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		n.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("nats not ready")
	}
	n.srv = srv
}

func (n *lossyNATS) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// snapshot copies the store as it is on disk now.
func (n *lossyNATS) snapshot() string {
	n.t.Helper()
	dir := n.t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(n.opts.StoreDir)); err != nil {
		n.t.Fatalf("copy the store: %v", err)
	}
	return dir
}

// revert stops the server, puts the snapshot back in place of its store and
// starts it again on the same port.
func (n *lossyNATS) revert(snapshot string) {
	n.t.Helper()
	n.stop()
	if err := os.RemoveAll(n.opts.StoreDir); err != nil {
		n.t.Fatal(err)
	}
	if err := os.CopyFS(n.opts.StoreDir, os.DirFS(snapshot)); err != nil {
		n.t.Fatalf("restore the store: %v", err)
	}
	n.start()
}

func (n *lossyNATS) url() string { return n.srv.ClientURL() }

// lossyFixture is a relay publishing to a lossyNATS, connected as the command
// service connects.
type lossyFixture struct {
	pool *pgxpool.Pool
	nats *lossyNATS
	js   jetstream.JetStream
	opts Options
}

func newLossyFixture(t testing.TB) lossyFixture {
	t.Helper()
	pool, _ := pgtest.MustPool(t)
	n := startLossyNATS(t)
	nc, err := nats.Connect(n.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	f := lossyFixture{pool: pool, nats: n, js: js, opts: Options{
		Stream: "CART_LOSSY", SubjectPrefix: "lossy.cart.events", Source: "urn:cart-cqrs:test",
		PollInterval: 100 * time.Millisecond, StandbyInterval: 50 * time.Millisecond,
		PublishTimeout: 2 * time.Second, VerifyInterval: 200 * time.Millisecond,
	}}
	if _, err := EnsureStream(context.Background(), js, f.opts); err != nil {
		t.Fatal(err)
	}
	return f
}

// lastSeq is the stream's last sequence, 0 when it cannot be read.
func (f lossyFixture) lastSeq(t testing.TB) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := f.js.Stream(ctx, f.opts.Stream)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.LastSeq
}

func retainedLen(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox_published`).Scan(&n); err != nil {
		t.Fatalf("count retained rows: %v", err)
	}
	return n
}

// appendCarts appends n more events to each cart, from the versions in at,
// and moves at on.
func appendCarts(t testing.TB, pool *pgxpool.Pool, at map[string]int, n int) []envelope.Envelope {
	t.Helper()
	var out []envelope.Envelope
	for i := 0; i < n; i++ {
		for c, v := range at {
			out = append(out, appendEvents(t, pool, c, v, 1)...)
			at[c] = v + 1
		}
	}
	return out
}

func TestRelay_RepublishesWhatARevertedStreamLost(t *testing.T) {
	f := newLossyFixture(t)
	r := New(f.pool, f.js, f.opts, testLogger(t))
	start(t, r)
	at := map[string]int{uuid.NewString(): 0, uuid.NewString(): 0, uuid.NewString(): 0}
	want := appendCarts(t, f.pool, at, 3)
	eventually(t, 10*time.Second, "the first events published", func() bool {
		return outboxLen(t, f.pool) == 0 && f.lastSeq(t) == uint64(len(want))
	})
	copied := f.nats.snapshot() // the last fsync

	// Acknowledged after the copy, and so lost: among them the last event
	// of every cart, which no later event would reveal as missing.
	want = append(want, appendCarts(t, f.pool, at, 2)...)
	at[uuid.NewString()] = 0
	want = append(want, appendCarts(t, f.pool, at, 1)...)
	eventually(t, 10*time.Second, "the later events published", func() bool {
		return outboxLen(t, f.pool) == 0 && f.lastSeq(t) == uint64(len(want))
	})
	if got := retainedLen(t, f.pool); got != len(want) {
		t.Fatalf("%d published rows retained, want %d", got, len(want))
	}

	f.nats.revert(copied)
	if got := f.lastSeq(t); got >= uint64(len(want)) {
		t.Fatalf("the reverted stream's last sequence is %d: it lost nothing", got)
	}
	eventually(t, 15*time.Second, "the stream to hold every event again", func() bool {
		return f.lastSeq(t) == uint64(len(want)) && outboxLen(t, f.pool) == 0
	})
	// And the events appended after the repair follow their carts' lost ones.
	want = append(want, appendCarts(t, f.pool, at, 1)...)
	eventually(t, 10*time.Second, "the newest events published", func() bool {
		return f.lastSeq(t) == uint64(len(want)) && outboxLen(t, f.pool) == 0
	})
	checkOncePerCartOrder(t, readStream(t, f.js, f.opts.Stream), want)
	if got := r.LossesDetected()[LossWentBack]; got != 1 {
		t.Errorf("losses detected (went back): %d, want 1", got)
	}
	if got := r.Republished(); got == 0 {
		t.Error("Republished() = 0 after a repair")
	}
}

func TestRelay_RecreatesADeletedStreamFromTheLog(t *testing.T) {
	f := newLossyFixture(t)
	r := New(f.pool, f.js, f.opts, testLogger(t))
	start(t, r)
	at := map[string]int{uuid.NewString(): 0, uuid.NewString(): 0}
	want := appendCarts(t, f.pool, at, 4)
	eventually(t, 10*time.Second, "published", func() bool {
		return outboxLen(t, f.pool) == 0 && f.lastSeq(t) == uint64(len(want))
	})
	if err := f.js.DeleteStream(context.Background(), f.opts.Stream); err != nil {
		t.Fatal(err)
	}
	want = append(want, appendCarts(t, f.pool, at, 1)...)
	eventually(t, 15*time.Second, "the stream back with every event", func() bool {
		return f.lastSeq(t) == uint64(len(want)) && outboxLen(t, f.pool) == 0
	})
	checkOncePerCartOrder(t, readStream(t, f.js, f.opts.Stream), want)
	if got := r.LossesDetected()[LossMissing] + r.LossesDetected()[LossRecreated]; got == 0 {
		t.Error("no loss detected for a deleted stream")
	}
}

// A new leader knows what the previous one acknowledged: it finds the loss
// when it starts.
func TestRelay_NewLeaderFindsTheLoss(t *testing.T) {
	f := newLossyFixture(t)
	first := New(f.pool, f.js, f.opts, testLogger(t))
	stopFirst := start(t, first)
	at := map[string]int{uuid.NewString(): 0, uuid.NewString(): 0}
	want := appendCarts(t, f.pool, at, 2)
	eventually(t, 10*time.Second, "published", func() bool {
		return outboxLen(t, f.pool) == 0 && f.lastSeq(t) == uint64(len(want))
	})
	copied := f.nats.snapshot()
	want = append(want, appendCarts(t, f.pool, at, 2)...)
	eventually(t, 10*time.Second, "published", func() bool {
		return outboxLen(t, f.pool) == 0 && f.lastSeq(t) == uint64(len(want))
	})
	stopFirst()
	f.nats.revert(copied)

	second := New(f.pool, f.js, f.opts, testLogger(t))
	start(t, second)
	eventually(t, 15*time.Second, "the stream to hold every event again", func() bool {
		return f.lastSeq(t) == uint64(len(want)) && outboxLen(t, f.pool) == 0
	})
	checkOncePerCartOrder(t, readStream(t, f.js, f.opts.Stream), want)
	if got := second.LossesDetected()[LossWentBack]; got != 1 {
		t.Errorf("the new leader detected %d losses, want 1", got)
	}
}

// Beyond the retained rows, the stream is given the whole log again: what
// it still holds within its duplicate window is dropped as a duplicate.
func TestRelay_LossBeyondTheRetainedRows(t *testing.T) {
	f := newLossyFixture(t)
	f.opts.Retention = 300 * time.Millisecond
	r := New(f.pool, f.js, f.opts, testLogger(t))
	start(t, r)
	at := map[string]int{uuid.NewString(): 0, uuid.NewString(): 0}
	want := appendCarts(t, f.pool, at, 2)
	eventually(t, 10*time.Second, "published", func() bool {
		return outboxLen(t, f.pool) == 0 && f.lastSeq(t) == uint64(len(want))
	})
	copied := f.nats.snapshot()
	want = append(want, appendCarts(t, f.pool, at, 2)...)
	eventually(t, 10*time.Second, "published and the retained rows purged", func() bool {
		return outboxLen(t, f.pool) == 0 && f.lastSeq(t) == uint64(len(want)) && retainedLen(t, f.pool) == 0
	})
	f.nats.revert(copied)
	eventually(t, 15*time.Second, "the stream to hold every event again", func() bool {
		return f.lastSeq(t) == uint64(len(want)) && outboxLen(t, f.pool) == 0
	})
	checkOncePerCartOrder(t, readStream(t, f.js, f.opts.Stream), want)
}

func TestRelay_RetentionOff(t *testing.T) {
	f := newFixture(t)
	f.opts.Retention = -1
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	start(t, r)
	appendEvents(t, f.pool, uuid.NewString(), 0, 3)
	eventually(t, 10*time.Second, "published", func() bool { return outboxLen(t, f.pool) == 0 })
	if n := retainedLen(t, f.pool); n != 0 {
		t.Errorf("%d rows retained with retention off", n)
	}
}

func TestWatch_PubAckGoingBack(t *testing.T) {
	w := &watch{}
	w.acked(&jetstream.PubAck{Sequence: 1})
	w.acked(&jetstream.PubAck{Sequence: 2})
	w.acked(&jetstream.PubAck{Sequence: 1, Duplicate: true})
	if w.wentBack() {
		t.Fatal("a duplicate's PubAck names the earlier sequence: not a loss")
	}
	w.acked(&jetstream.PubAck{Sequence: 2})
	w.acked(&jetstream.PubAck{Sequence: 3})
	if !w.wentBack() || w.back != 2 || w.maxAcked != 3 {
		t.Fatalf("watch %+v: want back at 2, maxAcked 3", *w)
	}
}
