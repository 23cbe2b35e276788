package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/services/projector/internal/documents"
)

// A write may be computed from the document the projector stored last,
// without reading it again, only because the stamps Save returns are those
// Load reads, and a stamp guards against any other document: one replaced
// at the same version included.
func TestStore_StampsGuardTheStoredDocument(t *testing.T) {
	f := mustStore(t)
	ctx := context.Background()
	gens, err := f.store.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	saved := func(t *testing.T, gens documents.Generations, c documents.Change) []documents.Stamp {
		t.Helper()
		res, err := f.store.Save(ctx, gens, []documents.Change{c})
		if err != nil || res[0].Err != nil {
			t.Fatalf("Save: %v, %v", res, err)
		}
		if len(res[0].Stamps) != len(c.Writes) {
			t.Fatalf("%d stamps for %d writes", len(res[0].Stamps), len(c.Writes))
		}
		return res[0].Stamps
	}
	s2, s3 := opened("a", "alice", t0, 2), opened("a", "alice", t0, 3)

	// The append script.
	st := saved(t, gens, documents.Change{CartID: "a", Writes: []documents.Write{{CartID: "a", State: s2, Changed: true, Skipped: []int{2}}}})
	if d := f.load(t, "a")["a"]; d.Stamp != st[0] || d.Stamp.IsZero() {
		t.Fatalf("Load stamp %x, Save stamp %x", d.Stamp, st[0])
	}
	// The save script (a history replaced), from the stamp Save returned.
	st = saved(t, gens, documents.Change{CartID: "a", Writes: []documents.Write{{
		CartID: "a", From: 2, State: s3, Changed: true, Skipped: []int{2}, ReplaceHistory: true, Stamp: st[0],
	}}})
	if d := f.load(t, "a")["a"]; d.Stamp != st[0] {
		t.Fatalf("Load stamp %x, Save stamp %x", d.Stamp, st[0])
	}
	// A write that changes no document keeps its stamp.
	if again := saved(t, gens, documents.Change{CartID: "a", Writes: []documents.Write{{
		CartID: "a", From: 3, State: s3, Stamp: st[0],
	}}}); again[0] != st[0] {
		t.Fatalf("stamp after an index-only write %x, want %x", again[0], st[0])
	}

	// (The writes carry no history entries: the history stays empty.)
	// A forced replacement at the same version and history length, as
	// `projector rebuild -cart` makes: the document differs.
	replaced := s3
	replaced.UpdatedAt = replaced.UpdatedAt.Add(time.Second)
	saved(t, gens, documents.Change{CartID: "a", Writes: []documents.Write{{
		CartID: "a", State: replaced, Changed: true, Skipped: []int{2}, Force: true, ReplaceHistory: true,
	}}})
	s4 := opened("a", "alice", t0, 4)
	stale := documents.Write{CartID: "a", From: 3, State: s4, Changed: true, Skipped: []int{2}, Stamp: st[0]}
	if err := f.save(t, stale); !errors.Is(err, documents.ErrConflict) {
		t.Fatalf("write onto a replaced document: err = %v, want ErrConflict", err)
	}
	stale.Stamp = f.load(t, "a")["a"].Stamp
	if err := f.save(t, stale); err != nil {
		t.Fatalf("write with the stamp read again: %v", err)
	}

	// Two generations: the save script guards and stamps each.
	both, err := f.store.SetGenerations(ctx, gens, 1, []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := f.store.Load(ctx, both, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	docs := recs["a"].Docs
	s5 := opened("a", "alice", t0, 5)
	st = saved(t, both, documents.Change{CartID: "a", Writes: []documents.Write{
		{CartID: "a", From: 4, State: s5, Changed: true, Skipped: []int{2}, Stamp: docs[0].Stamp},
		{CartID: "a", State: s5, Changed: true, Skipped: []int{2}, ReplaceHistory: true, Stamp: docs[1].Stamp},
	}})
	if recs, err = f.store.Load(ctx, both, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	for g, d := range recs["a"].Docs {
		if d.Stamp != st[g] || d.Version != 5 {
			t.Errorf("generation %d: version %d, Load stamp %x, Save stamp %x", g+1, d.Version, d.Stamp, st[g])
		}
	}
	res, err := f.store.Save(ctx, both, []documents.Change{{CartID: "a", Writes: []documents.Write{
		{CartID: "a", From: 5, State: s5, Stamp: st[0]},
		{CartID: "a", From: 5, State: s5, Stamp: docs[0].Stamp}, // version 4's
	}}})
	if err != nil || !errors.Is(res[0].Err, documents.ErrConflict) {
		t.Fatalf("write with a stale stamp in one generation: %v, %v; want ErrConflict", res, err)
	}
}
