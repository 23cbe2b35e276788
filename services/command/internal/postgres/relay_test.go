package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/jsontest"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/services/command/internal/postgres"
)

// fakeRelay records what the repository hands over.
type fakeRelay struct {
	leading atomic.Bool
	mu      sync.Mutex
	got     []envelope.Envelope
}

func (f *fakeRelay) Leading() bool { return f.leading.Load() }

func (f *fakeRelay) Committed(evs []envelope.Envelope) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, evs...)
}

func (f *fakeRelay) handed() []envelope.Envelope {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]envelope.Envelope(nil), f.got...)
}

// listen returns a connection listening on the outbox channel.
func listen(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(t.Context(), "LISTEN "+eventlog.OutboxChannel); err != nil {
		t.Fatal(err)
	}
	return conn
}

// notified reports whether a notification arrives within wait.
func notified(t *testing.T, conn *pgx.Conn, wait time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	_, err := conn.WaitForNotification(ctx)
	return err == nil
}

// While the relay of its process leads, a commit hands it the events it
// appended — as stored, positions included, before the command is answered —
// and notifies nobody; while it does not, a commit notifies the leader.
func TestRepository_HandsCommitsToTheRelay(t *testing.T) {
	pool, dbURL := pgtest.MustPool(t)
	relay := &fakeRelay{}
	relay.leading.Store(true)
	repo := postgres.New(pool, postgres.WithClock(stepClock()), postgres.WithRelay(relay))
	t.Cleanup(repo.Close)
	conn := listen(t, dbURL)

	id := mustOpen(t, repo, alice)
	p := mustProduct(t, repo, "123")
	mustDo(t, repo, id, alice, add(p, 2))
	handed := relay.handed() // answered: handed over already
	_, stored := fullFold(t, pool, id)
	if len(handed) != len(stored) {
		t.Fatalf("handed over %d events, stored %d", len(handed), len(stored))
	}
	for i, h := range handed {
		s := stored[i]
		if h.Position != s.Position || h.EventID != s.EventID || h.StreamID != s.StreamID || h.Version != s.Version ||
			h.Type != s.Type || h.SchemaVersion != s.SchemaVersion || h.Metadata != s.Metadata || !h.OccurredAt.Equal(s.OccurredAt) {
			t.Errorf("handed over %+v, stored %+v", h, s)
		}
		if !jsontest.Equal(h.Data, s.Data) {
			t.Errorf("handed over data %s, stored %s", h.Data, s.Data)
		}
	}
	if notified(t, conn, 200*time.Millisecond) {
		t.Error("a commit notified although the relay of its process leads")
	}

	relay.leading.Store(false)
	mustDo(t, repo, id, alice, add(p, 1))
	if !notified(t, conn, 5*time.Second) {
		t.Error("no notification from a commit while no relay of its process leads")
	}
}
