package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/cart-cqrs/cart/services/projector/internal/documents"
)

func (f fixture) parked(t *testing.T, cartID string) []documents.Parked {
	t.Helper()
	ctx := context.Background()
	gens, err := f.store.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := f.store.Load(ctx, gens, []string{cartID})
	if err != nil {
		t.Fatal(err)
	}
	return recs[cartID].Parked
}

func parkedVersions(ps []documents.Parked) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.Event.Version
	}
	return out
}

func (f fixture) count(t *testing.T) (int, []string) {
	t.Helper()
	n, err := f.store.ParkedEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := f.store.ParkedCarts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n, ids
}

func TestStore_ParkedEvents(t *testing.T) {
	f := mustStore(t)
	envs, _ := events(t, "p", "pat", 6)
	envs[3].SchemaVersion, envs[3].Data = 99, json.RawMessage("not json")
	park := func(vs ...int) []documents.Parked {
		var out []documents.Parked
		for _, v := range vs {
			out = append(out, documents.Parked{Event: envs[v-1], Error: "e", Attempts: 5, FirstParkedAt: t0, LastAttemptAt: t0})
		}
		return out
	}

	if err := f.change(t, documents.Change{CartID: "p", Park: park(4, 5)}); err != nil {
		t.Fatal(err)
	}
	got := f.parked(t, "p")
	if !slices.Equal(parkedVersions(got), []int{4, 5}) {
		t.Fatalf("parked %v, want [4 5]", parkedVersions(got))
	}
	if g := got[0]; g.Event.EventID != envs[3].EventID || string(g.Event.Data) != "not json" || g.Event.SchemaVersion != 99 ||
		g.Attempts != 5 || !g.FirstParkedAt.Equal(t0) || g.Event.StreamID != "p" {
		t.Errorf("parked event read back as %+v", g)
	}
	if n, ids := f.count(t); n != 2 || !slices.Equal(ids, []string{"p"}) {
		t.Errorf("count %d, carts %v", n, ids)
	}

	t.Run("Guarded", func(t *testing.T) {
		if err := f.change(t, documents.Change{CartID: "p", ParkedLen: 1, Park: park(6)}); !errors.Is(err, documents.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
	})
	t.Run("AppendAfterTheLast", func(t *testing.T) {
		if err := f.change(t, documents.Change{CartID: "p", ParkedLen: -1, Park: park(5, 6)}); err != nil {
			t.Fatal(err)
		}
		if got := parkedVersions(f.parked(t, "p")); !slices.Equal(got, []int{4, 5, 6}) {
			t.Fatalf("parked %v, want [4 5 6]", got)
		}
	})
	t.Run("UnparkAndReplaceTheHead", func(t *testing.T) {
		head := park(5)[0]
		head.Attempts, head.Error = 6, "still failing"
		if err := f.change(t, documents.Change{CartID: "p", ParkedLen: 3, Unpark: 1, Head: &head}); err != nil {
			t.Fatal(err)
		}
		got := f.parked(t, "p")
		if !slices.Equal(parkedVersions(got), []int{5, 6}) || got[0].Attempts != 6 || got[0].Error != "still failing" {
			t.Fatalf("parked %+v", got)
		}
		if n, _ := f.count(t); n != 2 {
			t.Errorf("count %d, want 2", n)
		}
	})
	t.Run("UnparkAll", func(t *testing.T) {
		if err := f.change(t, documents.Change{CartID: "p", ParkedLen: 2, Unpark: 2}); err != nil {
			t.Fatal(err)
		}
		if got := f.parked(t, "p"); len(got) != 0 {
			t.Fatalf("parked %v", parkedVersions(got))
		}
		if n, ids := f.count(t); n != 0 || len(ids) != 0 {
			t.Errorf("count %d, carts %v", n, ids)
		}
	})
}

func TestStore_GenerationsGuardEveryWrite(t *testing.T) {
	f := mustStore(t)
	ctx := context.Background()
	before, err := f.store.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.Current != 1 || !slices.Equal(before.Writes, []int{1}) {
		t.Fatalf("generations of an empty store = %+v", before)
	}
	after, err := f.store.SetGenerations(ctx, before, 1, []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.SetGenerations(ctx, before, 1, []int{1, 3}); !errors.Is(err, documents.ErrStaleGenerations) {
		t.Fatalf("set from stale generations: err = %v, want ErrStaleGenerations", err)
	}
	s := opened("a", "alice", t0, 1)
	write := documents.Write{CartID: "a", State: s, Changed: true}
	res, err := f.store.Save(ctx, before, []documents.Change{{CartID: "a", Writes: []documents.Write{write}}})
	if err != nil || !errors.Is(res[0].Err, documents.ErrStaleGenerations) {
		t.Fatalf("write computed before the switch: %v, %v; want ErrStaleGenerations", res, err)
	}
	res, err = f.store.Save(ctx, after, []documents.Change{{CartID: "a", Writes: []documents.Write{write, write}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("write to both generations: %v, %v", res, err)
	}
	for _, g := range []int{1, 2} {
		if v, err := f.env.Client.HGet(ctx, f.store.Keys(g).Cart("a"), "version").Result(); err != nil || v != "1" {
			t.Errorf("generation %d: version %q, %v", g, v, err)
		}
	}
	stored, err := f.store.StoredGenerations(ctx)
	if err != nil || !slices.Equal(stored, []int{1, 2}) {
		t.Errorf("stored generations = %v, %v", stored, err)
	}
	n, err := f.store.DropGeneration(ctx, 1)
	if err != nil || n != 3 { // the document, the open-cart index and its latest key
		t.Errorf("dropped %d keys, %v; want 3", n, err)
	}
	if stored, _ := f.store.StoredGenerations(ctx); !slices.Equal(stored, []int{2}) {
		t.Errorf("stored generations after the drop = %v", stored)
	}
}
