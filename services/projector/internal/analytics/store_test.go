package analytics

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
)

func mustStore(t *testing.T) (*Store, redistest.Env) {
	t.Helper()
	r := redistest.MustRedis(t)
	return NewStore(r.Client, r.Prefix), r
}

// keysOf lists the keys of generation gen.
func keysOf(t *testing.T, r redistest.Env, gen int) []string {
	t.Helper()
	keys, _, err := r.Client.Scan(t.Context(), 0, readmodel.AnalyticsKeys{Prefix: r.Prefix, Generation: gen}.Pattern(), 10000).Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func oneWrite(t *testing.T, from int) cartWrite {
	t.Helper()
	evs := stream(t, uuid.NewString(), at{0, cart.Opened{CustomerID: "c"}}, at{time.Minute, added("p1", 1)})
	next, d, _, err := Fold(CartState{}, evs)
	if err != nil {
		t.Fatal(err)
	}
	return cartWrite{cartID: evs[0].StreamID, from: from, state: next, delta: d}
}

// TestWrite_RefusesAnUnlistedGeneration: a write into a generation that is
// not (or no longer) listed creates nothing, so a late writer cannot bring
// back the keys of a generation being dropped.
func TestWrite_RefusesAnUnlistedGeneration(t *testing.T) {
	s, r := mustStore(t)
	ctx := t.Context()
	gen, err := s.listBuilding(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.write(ctx, gen, []cartWrite{oneWrite(t, 0)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.unlist(ctx, "building", gen); err != nil || n == 0 {
		t.Fatalf("unlist: %d keys, %v", n, err)
	}
	if _, err := s.write(ctx, gen, []cartWrite{oneWrite(t, 0)}); !errors.Is(err, ErrGenerationGone) {
		t.Errorf("write into a dropped generation: %v, want ErrGenerationGone", err)
	}
	if keys := keysOf(t, r, gen); len(keys) > 0 {
		t.Errorf("the dropped generation has keys again: %v", keys)
	}
	if gens, err := s.Generations(ctx); err != nil || gens != (Generations{}) {
		t.Errorf("generations = %+v, %v", gens, err)
	}
}

// TestWrite_CompareAndSet: a chunk is written only if every cart is still
// at the version its write was computed from; otherwise nothing of it is.
func TestWrite_CompareAndSet(t *testing.T) {
	s, _ := mustStore(t)
	ctx := t.Context()
	gen, err := s.listBuilding(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w := oneWrite(t, 0)
	if out, err := s.write(ctx, gen, []cartWrite{w}); err != nil || out[0] != written {
		t.Fatalf("first write: %v %v", out, err)
	}
	fresh := oneWrite(t, 0)
	out, err := s.write(ctx, gen, []cartWrite{fresh, w})
	if err != nil || out[0] != conflicted || out[1] != conflicted {
		t.Fatalf("a write from a stale version: %v %v", out, err)
	}
	p, found, err := s.Product(ctx, gen, "p1")
	if err != nil || !found || p.Added != 1 || p.AddedToCarts != 1 {
		t.Errorf("p1 = %+v, %v, %v; want counted once", p, found, err)
	}
	states, err := s.loadStates(ctx, gen, []string{fresh.cartID, w.cartID})
	if err != nil || states[0].Version != 0 || states[1].Version != 2 {
		t.Errorf("states = %+v, %v", states, err)
	}
}

// TestBuild_OneAtATime: a build refuses to start while another holds the
// lock.
func TestBuild_OneAtATime(t *testing.T) {
	s, _ := mustStore(t)
	pool, _ := pgtest.MustPool(t)
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder(BuildConfig{}, s, pool, metrics, slog.New(slog.DiscardHandler))
	ok, err := s.lock.Lock(t.Context(), "someone else", time.Minute)
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if _, err := b.Build(t.Context()); !errors.Is(err, ErrBuilding) {
		t.Errorf("Build under another's lock: %v, want ErrBuilding", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := b.Rebuild(ctx); err == nil {
		t.Error("Rebuild did not wait for the lock")
	}
	if err := s.lock.Unlock(t.Context(), "someone else"); err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(t.Context())
	if err != nil || res.Generation != 1 {
		t.Fatalf("Build: %+v %v", res, err)
	}
	if gens, err := s.Generations(t.Context()); err != nil || gens != (Generations{Current: 1}) {
		t.Errorf("generations = %+v, %v", gens, err)
	}
}
