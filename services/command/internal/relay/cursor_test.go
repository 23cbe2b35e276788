package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func TestCursor_AdvancesOnlyPastEndedTransactions(t *testing.T) {
	var c cursor
	if c.wantsXID() {
		t.Fatal("a new cursor wants a transaction id before it noted a position")
	}
	c.advance(horizon{seq: 10, xmin: 100}, 10, false, 0) // notes seq 10
	if !c.wantsXID() {
		t.Fatal("the cursor noted a position and wants no transaction id")
	}
	c.advance(horizon{seq: 12, xmin: 101, xid: 107}, 12, false, 0) // notes xid 107
	if c.floor != 0 || c.wantsXID() {
		t.Fatalf("floor %d before any horizon passed, want 0, and no second id", c.floor)
	}
	c.advance(horizon{seq: 12, xmin: 106}, 0, false, 0) // transaction 106 may hold a position ≤ 10
	if c.floor != 0 {
		t.Fatalf("floor %d while xmin 106 < xid 107, want 0", c.floor)
	}
	c.advance(horizon{seq: 14, xmin: 107}, 14, false, 0)
	if c.floor != 10 {
		t.Fatalf("floor %d once xmin reached 107, want 10", c.floor)
	}
	// The next horizon was noted in the same round (seq 14); a full batch
	// that read up to 12 stops the floor there, and a failed publish below it.
	c.advance(horizon{seq: 20, xmin: 110, xid: 112}, 18, false, 0) // notes xid 112
	c.advance(horizon{seq: 30, xmin: 112}, 12, true, 0)
	if c.floor != 12 {
		t.Fatalf("floor %d after a full batch read up to 12, want 12", c.floor)
	}
	c.advance(horizon{seq: 30, xmin: 113}, 20, false, 13)
	if c.floor != 12 {
		t.Fatalf("floor %d with position 13 unpublished, want 12", c.floor)
	}
	c.advance(horizon{seq: 30, xmin: 113}, 20, false, 0)
	if c.floor != 14 {
		t.Fatalf("floor %d once 13 is published, want 14", c.floor)
	}
}

// The floor follows the published rows on a real server, and stays below a
// row whose transaction is still open.
func TestRound_FloorStaysBelowOpenTransactions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := New(f.pool, f.nats.JS, f.opts, testLogger(t))
	conn, err := pgx.Connect(ctx, f.pool.Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := conn.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	var cur cursor
	rounds := func(n int) {
		t.Helper()
		for range n {
			if _, err := r.round(ctx, conn, &cur, heads{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The floor moves once every transaction older than the rounds' has
	// ended: on a server other tests share, that may take a while.
	reaches := func(pos int64, what string) {
		t.Helper()
		eventually(t, 10*time.Second, what, func() bool {
			rounds(1)
			return cur.floor >= pos
		})
	}

	first := appendEvents(t, f.pool, uuid.NewString(), 0, 3)
	reaches(first[len(first)-1].Position, "floor past every row published")

	tx, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			t.Error(err)
		}
	}()
	open := appendEvents(t, tx, uuid.NewString(), 0, 1)
	// First with no transaction ending after the open one took its id (as
	// far as this test goes: other tests' transactions may), then with
	// later ones committed.
	rounds(6)
	if cur.floor >= open[0].Position {
		t.Fatalf("floor %d passed position %d of an open transaction, the newest", cur.floor, open[0].Position)
	}
	later := appendEvents(t, f.pool, uuid.NewString(), 0, 2)
	rounds(6)
	if cur.floor >= open[0].Position {
		t.Fatalf("floor %d passed position %d of an open transaction", cur.floor, open[0].Position)
	}
	if n := outboxLen(t, f.pool); n != 0 {
		t.Fatalf("outbox holds %d rows before the open transaction commits, want 0 visible", n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	rounds(2) // the second removes what the first published
	if n := outboxLen(t, f.pool); n != 0 {
		t.Fatalf("outbox holds %d rows after the late commit's rounds, want 0", n)
	}
	reaches(later[len(later)-1].Position, "floor past the late commit once it was published")
}
