package redisstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/rebuild"
)

// merge is a rebuild's merge of a cart's events after base.
func (f fixture) merge(t *testing.T, envs []envelope.Envelope, s cart.State, base int, index bool) rebuild.Merge {
	t.Helper()
	m := rebuild.Merge{CartID: s.CartID, Base: base, State: s, Place: true, Index: index}
	for _, e := range envs[base:] {
		b, err := f.store.AppendEntry(nil, readmodel.NewHistoryEntry(e))
		if err != nil {
			t.Fatal(err)
		}
		m.Entries = append(m.Entries, b)
	}
	return m
}

func (f fixture) writeMerges(t *testing.T, merges ...rebuild.Merge) []rebuild.MergeResult {
	t.Helper()
	res, err := f.store.WriteMerges(context.Background(), f.keys.Generation, merges)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// stored checks a cart's hash and history: the document of s, its owner,
// and versions 1..s.Version.
func (f fixture) stored(t *testing.T, s cart.State) {
	t.Helper()
	got, err := f.env.Client.HGetAll(context.Background(), f.keys.Cart(s.CartID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(readmodel.FromState(s))
	if err != nil {
		t.Fatal(err)
	}
	if got[readmodel.FieldDoc] != string(want) || got[readmodel.FieldOwner] != s.CustomerID {
		t.Errorf("cart %s = %v\nwant doc %s and owner %s", s.CartID, got, want, s.CustomerID)
	}
	versions := make([]int, s.Version)
	for i := range versions {
		versions[i] = i + 1
	}
	if h := f.history(t, s.CartID); !equal(h, versions...) {
		t.Errorf("history of %s = %v, want %v", s.CartID, h, versions)
	}
}

// stagedKeys are the keys carts are staged under, in the test's
// generation.
func (f fixture) stagedKeys(t *testing.T) []string {
	t.Helper()
	keys, err := f.env.Client.Keys(context.Background(), f.keys.Pattern()[:len(f.keys.Pattern())-1]+"*:staged").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// noStagedKeys checks that nothing is left under the keys carts are
// staged under.
func (f fixture) noStagedKeys(t *testing.T) {
	t.Helper()
	if left := f.stagedKeys(t); len(left) != 0 {
		t.Errorf("staged keys left: %v", left)
	}
}

// dropStaged deletes what is staged, as a Redis that lost it.
func (f fixture) dropStaged(t *testing.T) {
	t.Helper()
	keys := f.stagedKeys(t)
	if len(keys) == 0 {
		t.Fatal("nothing staged")
	}
	if err := f.env.Client.Del(context.Background(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestWriteMerges_NewCartsArePlacedWhole(t *testing.T) {
	f := mustStore(t)
	envs, s := events(t, "a", "alice", 3)
	outEnvs, out := events(t, "b", "bob", 2)
	co := checkedOut(out)
	coEnv, err := envelope.New("id-b-c", "b", 3, cart.CheckedOut{}, envelope.Metadata{Actor: "bob"}, co.UpdatedAt)
	if err != nil {
		t.Fatal(err)
	}
	res := f.writeMerges(t, f.merge(t, envs, s, 0, true), f.merge(t, append(outEnvs, coEnv), co, 0, true))
	if res[0] != rebuild.Merged || res[1] != rebuild.Merged {
		t.Fatalf("results = %v, want both merged", res)
	}
	f.stored(t, s)
	f.stored(t, co)
	if got := f.openCart(t, "alice"); got != "a" {
		t.Errorf("open cart of alice = %q, want a", got)
	}
	if got := f.openCart(t, "bob"); got != "" {
		t.Errorf("open cart of bob = %q, want none", got)
	}
	f.noStagedKeys(t)

	t.Run("Append", func(t *testing.T) {
		more, s5 := events(t, "a", "alice", 5)
		if res := f.writeMerges(t, f.merge(t, more, s5, 3, false)); res[0] != rebuild.Merged {
			t.Fatalf("result = %v, want merged", res[0])
		}
		f.stored(t, s5)
	})
	t.Run("AgainIsBehind", func(t *testing.T) {
		envs, s5 := events(t, "a", "alice", 5)
		if res := f.writeMerges(t, f.merge(t, envs, s5, 0, true)); res[0] != rebuild.Behind {
			t.Fatalf("result = %v, want behind", res[0])
		}
		f.stored(t, s5)
		f.noStagedKeys(t)
	})
}

// A live projector writes the generation a rebuild fills: the further of
// the two stays, whichever wrote first.
func TestWriteMerges_LiveWritesFirst(t *testing.T) {
	f := mustStore(t)
	envs, s4 := events(t, "c", "carol", 4)
	_, s2 := events(t, "c", "carol", 2)
	live := func(s cart.State, n int) {
		t.Helper()
		if err := f.save(t, documents.Write{CartID: "c", State: s, Changed: true, History: entries(envs[:n])}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("Ahead", func(t *testing.T) {
		live(s4, 4)
		if res := f.writeMerges(t, f.merge(t, envs[:2], s2, 0, true)); res[0] != rebuild.Behind {
			t.Fatalf("result = %v, want behind", res[0])
		}
		f.stored(t, s4)
		f.noStagedKeys(t)
	})
	t.Run("Behind", func(t *testing.T) {
		if err := f.env.Client.Del(context.Background(), f.keys.Cart("c"), f.keys.History("c")).Err(); err != nil {
			t.Fatal(err)
		}
		live(s2, 2)
		if res := f.writeMerges(t, f.merge(t, envs, s4, 0, true)); res[0] != rebuild.Merged {
			t.Fatalf("result = %v, want merged", res[0])
		}
		f.stored(t, s4)
		f.noStagedKeys(t)
	})
	t.Run("OutOfStepIsReset", func(t *testing.T) {
		// The rebuild stored version 2 before; someone replaced the cart
		// with a history that does not match its document.
		if err := f.env.Client.RPop(context.Background(), f.keys.History("c")).Err(); err != nil {
			t.Fatal(err)
		}
		_, s5 := events(t, "c", "carol", 5)
		more, _ := events(t, "c", "carol", 5)
		if res := f.writeMerges(t, f.merge(t, more, s5, 4, false)); res[0] != rebuild.Reset {
			t.Fatalf("result = %v, want reset", res[0])
		}
		if res := f.writeMerges(t, f.merge(t, more, s5, 0, true)); res[0] != rebuild.Merged {
			t.Fatalf("whole: result = %v, want merged", res[0])
		}
		f.stored(t, s5)
	})
}

// The customer index follows the newest of a customer's carts, whatever
// order the rebuild writes them in.
func TestWriteMerges_CustomerIndexFollowsTheNewestCart(t *testing.T) {
	f := mustStore(t)
	at := t0.Add(time.Hour)
	older := opened("older", "dana", t0, 2)
	newer := opened("newer", "dana", at, 2)
	oldEnvs, _ := events(t, "older", "dana", 2)
	newEnvs, _ := events(t, "newer", "dana", 2)
	coEnv, err := envelope.New("id-newer-c", "newer", 3, cart.CheckedOut{}, envelope.Metadata{}, at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// The newer cart, checked out, is written before the older one, still
	// open in the rebuild's reading: the index must not point at it.
	f.writeMerges(t, f.merge(t, append(newEnvs, coEnv), checkedOut(newer), 0, true))
	f.writeMerges(t, f.merge(t, oldEnvs, older, 0, true))
	if got := f.openCart(t, "dana"); got != "" {
		t.Errorf("open cart = %q, want none", got)
	}

	t.Run("NewerCheckedOutAfterOlder", func(t *testing.T) {
		g := mustStore(t)
		oc, err := envelope.New("id-older-c", "older", 3, cart.CheckedOut{}, envelope.Metadata{}, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		g.writeMerges(t, g.merge(t, append(oldEnvs, oc), checkedOut(older), 0, true))
		g.writeMerges(t, g.merge(t, append(newEnvs, coEnv), checkedOut(newer), 0, true))
		latest, err := g.env.Client.Get(context.Background(), g.keys.OpenCart("dana")+":latest").Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := "newer"; latest[len(latest)-len(want):] != want {
			t.Errorf("latest cart = %q, want the newer one", latest)
		}
		// A late open cart older than both does not take the index.
		late := opened("late", "dana", t0.Add(-time.Hour), 1)
		lateEnvs, _ := events(t, "late", "dana", 1)
		g.writeMerges(t, g.merge(t, lateEnvs, late, 0, true))
		if got := g.openCart(t, "dana"); got != "" {
			t.Errorf("open cart = %q, want none", got)
		}
	})
}

// A cart's entries are staged as the rebuild reads them, and the cart is
// placed once it is done.
func TestWriteMerges_StagedThenPlaced(t *testing.T) {
	f := mustStore(t)
	envs, s4 := events(t, "e", "erin", 4)
	m := f.merge(t, envs[:2], s4, 0, true)
	m.Place = false
	if res := f.writeMerges(t, m); res[0] != rebuild.Merged {
		t.Fatalf("staged: result = %v", res[0])
	}
	if n, err := f.env.Client.Exists(context.Background(), f.keys.Cart("e"), f.keys.History("e")).Result(); err != nil || n != 0 {
		t.Fatalf("after staging, %d keys of the cart exist (%v), want none", n, err)
	}
	m = f.merge(t, envs, s4, 0, true)
	m.Staged, m.Entries = 2, m.Entries[2:]
	if res := f.writeMerges(t, m); res[0] != rebuild.Merged {
		t.Fatalf("placed: result = %v", res[0])
	}
	f.stored(t, s4)
	f.noStagedKeys(t)

	t.Run("LostEntriesReset", func(t *testing.T) {
		envs, s2 := events(t, "l", "lee", 2)
		m := f.merge(t, envs[:1], s2, 0, true)
		m.Place = false
		f.writeMerges(t, m)
		// Redis lost what was staged (it restarted, say).
		f.dropStaged(t)
		m = f.merge(t, envs, s2, 0, true)
		m.Staged, m.Entries = 1, m.Entries[1:]
		if res := f.writeMerges(t, m); res[0] != rebuild.Reset {
			t.Fatalf("result = %v, want reset", res[0])
		}
		if res := f.writeMerges(t, f.merge(t, envs, s2, 0, true)); res[0] != rebuild.Merged {
			t.Fatalf("whole: result = %v, want merged", res[0])
		}
		f.stored(t, s2)
		f.noStagedKeys(t)
	})
}
