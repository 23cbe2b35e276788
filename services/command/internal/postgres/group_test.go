package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

// The group commit's tests run groups synchronously (run), so that which
// units share a transaction is decided by the test, not by timing.

var groupMD = envelope.Metadata{Actor: "group", CorrelationID: "corr", CausationID: "cause"}

type groupEnv struct {
	t    *testing.T
	repo *Repository
	c    *committer // no workers: the test calls run
	beef *cart.Product
}

func newGroupEnv(t *testing.T) *groupEnv {
	t.Helper()
	pool, _ := pgtest.MustPool(t)
	repo := New(pool)
	t.Cleanup(repo.Close)
	p, err := repo.Product(t.Context(), "123")
	if err != nil || p == nil {
		t.Fatalf("product 123: %v, %v", p, err)
	}
	return &groupEnv{t: t, repo: repo, c: newCommitter(pool, nil, newCommitMetrics(), 0, DefaultMaxGroup), beef: p}
}

// open opens a cart for customer through the repository (its own group).
func (g *groupEnv) open(customer string) cart.State {
	g.t.Helper()
	id, _, _, err := g.repo.Open(g.t.Context(), cart.Actor{ID: customer}, groupMD)
	if err != nil {
		g.t.Fatalf("open for %s: %v", customer, err)
	}
	return g.load(id)
}

func (g *groupEnv) load(id string) cart.State {
	g.t.Helper()
	s, err := g.repo.Load(g.t.Context(), id)
	if err != nil {
		g.t.Fatalf("load %s: %v", id, err)
	}
	return s
}

// addUnit is the unit that adds qty of product 123 to the cart in state s,
// with an idempotency key when key is not "".
func (g *groupEnv) addUnit(s cart.State, qty int, key string) *unit {
	g.t.Helper()
	by := cart.Actor{ID: s.CustomerID}
	evs, err := cart.Decide(s, by, cart.AddItem{ProductID: g.beef.ID, Quantity: qty, Product: g.beef})
	if err != nil {
		g.t.Fatalf("decide: %v", err)
	}
	var k *keyRow
	if key != "" {
		hash := sha256.Sum256([]byte(key))
		req := idempotency.Request{Caller: s.CustomerID, Key: key, Method: "POST", Path: "/v1/carts/" + s.CartID + "/items",
			Hash: hash[:]}
		if k, err = keyFor(&req, s.CartID, s.Version+len(evs), false); err != nil {
			g.t.Fatal(err)
		}
	}
	u, _, err := g.repo.prepare(headUpdate, s, s.CustomerID, evs, groupMD, k)
	if err != nil {
		g.t.Fatalf("prepare: %v", err)
	}
	u.ctx, u.done = g.t.Context(), make(chan error, 1)
	return u
}

func outcome(t *testing.T, u *unit) error {
	t.Helper()
	select {
	case err := <-u.done:
		return err
	default:
		t.Fatal("a unit of the group was not answered")
		return nil
	}
}

func (g *groupEnv) version(id string) int {
	g.t.Helper()
	return g.load(id).Version
}

// TestGroupCommit_OneConflictDoesNotFailTheOthers: a stale unit in the middle
// of a group is answered with a conflict; the others commit, with their
// outbox rows, and nothing of the stale one is written.
func TestGroupCommit_OneConflictDoesNotFailTheOthers(t *testing.T) {
	t.Parallel()
	g := newGroupEnv(t)
	a, b, c := g.open("ann"), g.open("ben"), g.open("cat")
	stale := b
	stale.Version = 0 // decided on a state the stream has moved past
	ua, ub, uc := g.addUnit(a, 1, ""), g.addUnit(stale, 2, ""), g.addUnit(c, 3, "")

	g.c.run([]*unit{ua, ub, uc}) // run sorts the group by lock

	if err := outcome(t, ua); err != nil {
		t.Errorf("cart a: %v", err)
	}
	if err := outcome(t, ub); !errors.Is(err, errConflict) {
		t.Errorf("stale cart b: %v, want errConflict", err)
	}
	if err := outcome(t, uc); err != nil {
		t.Errorf("cart c: %v", err)
	}
	if va, vb, vc := g.version(a.CartID), g.version(b.CartID), g.version(c.CartID); va != 2 || vb != 1 || vc != 2 {
		t.Fatalf("versions a=%d b=%d c=%d, want 2 1 2", va, vb, vc)
	}
	var outbox int
	if err := g.repo.pool.QueryRow(t.Context(), `SELECT count(*) FROM outbox`).Scan(&outbox); err != nil || outbox != 5 {
		t.Fatalf("%d outbox rows (%v), want 5: three opens and the two adds", outbox, err)
	}
}

// TestGroupCommit_SameCartTwiceCommitsOneAfterTheOther: two units decided on
// the same state of one cart do not share a transaction; the second meets
// the first committed and loses, as it would in two transactions.
func TestGroupCommit_SameCartTwiceCommitsOneAfterTheOther(t *testing.T) {
	t.Parallel()
	g := newGroupEnv(t)
	a, b := g.open("ann"), g.open("ben")
	first, other, second := g.addUnit(a, 1, ""), g.addUnit(b, 1, ""), g.addUnit(a, 5, "")

	g.c.run([]*unit{first, other, second})

	if err := outcome(t, first); err != nil {
		t.Errorf("first unit on a: %v", err)
	}
	if err := outcome(t, other); err != nil {
		t.Errorf("unit on b: %v", err)
	}
	if err := outcome(t, second); !errors.Is(err, errConflict) {
		t.Errorf("second unit on a: %v, want errConflict", err)
	}
	s := g.load(a.CartID)
	if l, ok := s.Line("123"); s.Version != 2 || !ok || l.Quantity != 1 {
		t.Fatalf("cart a = v%d %+v, want v2 with the first unit's quantity 1", s.Version, s.Lines)
	}
}

// TestGroupCommit_StatementErrorFailsOnlyItsUnit: a unit whose idempotency
// key is already stored fails on a unique violation, which aborts the
// transaction; it is answered with errKeyTaken and the units before and
// after it commit in the next try.
func TestGroupCommit_StatementErrorFailsOnlyItsUnit(t *testing.T) {
	t.Parallel()
	g := newGroupEnv(t)
	a, b, c := g.open("ann"), g.open("ben"), g.open("cat")
	first := g.addUnit(b, 1, "k1")
	g.c.run([]*unit{first})
	if err := outcome(t, first); err != nil {
		t.Fatalf("storing the key: %v", err)
	}
	b = g.load(b.CartID)

	ua, ub, uc := g.addUnit(a, 1, "k1"), g.addUnit(b, 1, "k1"), g.addUnit(c, 1, "k2")
	g.c.run([]*unit{ua, ub, uc})

	if err := outcome(t, ua); err != nil {
		t.Errorf("cart a (ann's own k1): %v", err)
	}
	if err := outcome(t, ub); !errors.Is(err, errKeyTaken) {
		t.Errorf("cart b reusing ben's k1: %v, want errKeyTaken", err)
	}
	if err := outcome(t, uc); err != nil {
		t.Errorf("cart c: %v", err)
	}
	if va, vb, vc := g.version(a.CartID), g.version(b.CartID), g.version(c.CartID); va != 2 || vb != 2 || vc != 2 {
		t.Fatalf("versions a=%d b=%d c=%d, want 2 2 2 (b only from its first add)", va, vb, vc)
	}
}

// TestGroupCommit_GivenUpUnitIsNotWritten: a command whose caller left
// before its group started writes nothing.
func TestGroupCommit_GivenUpUnitIsNotWritten(t *testing.T) {
	t.Parallel()
	g := newGroupEnv(t)
	a, b := g.open("ann"), g.open("ben")
	ctx, cancel := context.WithCancel(t.Context())
	gone := g.addUnit(a, 1, "")
	gone.ctx = ctx
	cancel()
	stays := g.addUnit(b, 1, "")

	g.c.run([]*unit{gone, stays})

	if err := outcome(t, gone); !errors.Is(err, context.Canceled) {
		t.Errorf("given-up unit: %v, want context.Canceled", err)
	}
	if err := outcome(t, stays); err != nil {
		t.Errorf("other unit: %v", err)
	}
	if va, vb := g.version(a.CartID), g.version(b.CartID); va != 1 || vb != 2 {
		t.Fatalf("versions a=%d b=%d, want 1 2", va, vb)
	}
}

// TestGroupCommit_Closed: after Close a command fails without writing, and
// what was queued before was committed.
func TestGroupCommit_Closed(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.MustPool(t)
	repo := New(pool)
	s, err := repo.Load(t.Context(), mustOpenID(t, repo))
	if err != nil {
		t.Fatal(err)
	}
	repo.Close()
	repo.Close() // idempotent
	_, err = repo.Update(t.Context(), s.CartID, cart.Actor{ID: s.CustomerID}, groupMD, func(cart.State) ([]cart.Event, error) {
		return []cart.Event{cart.CheckedOut{}}, nil
	})
	if !errors.Is(err, errClosed) {
		t.Fatalf("Update after Close = %v, want errClosed", err)
	}
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE stream_id = $1`, s.CartID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d events (%v), want only the open", n, err)
	}
}

func mustOpenID(t *testing.T, repo *Repository) string {
	t.Helper()
	id, _, _, err := repo.Open(t.Context(), cart.Actor{ID: "dan"}, groupMD)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
