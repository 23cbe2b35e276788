package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/query/internal/redisstore"
)

// mustStore is a Store over env's client and prefix.
func mustStore(tb testing.TB, env redistest.Env) *redisstore.Store {
	tb.Helper()
	s, err := redisstore.New(env.Client, env.Prefix, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestGeneration(t *testing.T) {
	env := redistest.MustRedis(t)
	ctx := context.Background()
	s := mustStore(t, env)

	t.Run("AbsentMeansOne", func(t *testing.T) {
		if g, err := s.Generation(ctx); err != nil || g != 1 {
			t.Fatalf("Generation() = %d, %v; want 1", g, err)
		}
	})
	t.Run("Refresh", func(t *testing.T) {
		if err := env.Client.Set(ctx, readmodel.CurrentGeneration(env.Prefix), "3", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if g, err := s.Generation(ctx); err != nil || g != 1 {
			t.Fatalf("before Refresh: Generation() = %d, %v; want the cached 1", g, err)
		}
		if g, err := s.Refresh(ctx); err != nil || g != 3 {
			t.Fatalf("Refresh() = %d, %v; want 3", g, err)
		}
		if g, err := s.Generation(ctx); err != nil || g != 3 {
			t.Fatalf("after Refresh: Generation() = %d, %v; want 3", g, err)
		}
	})
	t.Run("ErrGarbage", func(t *testing.T) {
		if err := env.Client.Set(ctx, readmodel.CurrentGeneration(env.Prefix), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Refresh(ctx); err == nil {
			t.Fatal("Refresh() accepted a non-numeric generation")
		}
		if g, err := s.Generation(ctx); err != nil || g != 3 {
			t.Fatalf("Generation() = %d, %v; want the last good 3", g, err)
		}
	})
}

func TestHistory(t *testing.T) {
	env := redistest.MustRedis(t)
	ctx := context.Background()
	s := mustStore(t, env)
	keys := readmodel.Keys{Prefix: env.Prefix, Generation: 1}

	if _, _, found, err := s.History(ctx, "absent"); err != nil || found {
		t.Fatalf("History(absent) found=%v err=%v", found, err)
	}
	entries := []readmodel.HistoryEntry{
		{Version: 1, EventID: "e1", Type: "cart.opened", SchemaVersion: 1, Data: []byte(`{"customerId":"alice"}`), Actor: "alice"},
		{Version: 2, EventID: "e2", Type: "cart.checked-out", SchemaVersion: 1, Data: []byte(`{}`), Actor: "alice"},
	}
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Client.RPush(ctx, keys.History("c"), b).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, found, err := s.History(ctx, "c"); err != nil || found {
		t.Fatalf("History without a document: found=%v err=%v; want not found", found, err)
	}
	if err := env.Client.HSet(ctx, keys.Cart("c"), readmodel.FieldVersion, 2, readmodel.FieldDoc, `{"version":2}`).Err(); err != nil {
		t.Fatal(err)
	}
	st, got, found, err := s.History(ctx, "c")
	if err != nil || !found || string(st.Doc) != `{"version":2}` || st.Version != 2 || st.Owner != "" {
		t.Fatalf("History = %+v, found=%v, err=%v", st, found, err)
	}
	if len(got) != 2 || got[0].EventID != "e1" || got[1].Version != 2 || string(got[0].Data) != `{"customerId":"alice"}` {
		t.Fatalf("entries = %+v", got)
	}
}

func TestCart(t *testing.T) {
	env := redistest.MustRedis(t)
	ctx := context.Background()
	s := mustStore(t, env)
	keys := readmodel.Keys{Prefix: env.Prefix, Generation: 1}
	doc := `{"cartId":"c","customerId":"alice","status":"open","version":3}`

	t.Run("Missing", func(t *testing.T) {
		if st, found, err := s.Cart(ctx, "absent"); err != nil || found {
			t.Fatalf("Cart(absent) = %+v, found=%v, err=%v", st, found, err)
		}
	})
	t.Run("OKWithOwner", func(t *testing.T) {
		if err := env.Client.HSet(ctx, keys.Cart("c"), readmodel.FieldVersion, 3, readmodel.FieldDoc, doc,
			readmodel.FieldOwner, "alice").Err(); err != nil {
			t.Fatal(err)
		}
		st, found, err := s.Cart(ctx, "c")
		if err != nil || !found || string(st.Doc) != doc || st.Version != 3 || st.Owner != "alice" {
			t.Fatalf("Cart = %+v, found=%v, err=%v", st, found, err)
		}
	})
	t.Run("OKWrittenBeforeOwner", func(t *testing.T) {
		if err := env.Client.HSet(ctx, keys.Cart("old"), readmodel.FieldVersion, 3, readmodel.FieldDoc, doc).Err(); err != nil {
			t.Fatal(err)
		}
		st, found, err := s.Cart(ctx, "old")
		if err != nil || !found || string(st.Doc) != doc || st.Version != 3 || st.Owner != "" {
			t.Fatalf("Cart = %+v, found=%v, err=%v", st, found, err)
		}
	})
	t.Run("OpenCart", func(t *testing.T) {
		if err := env.Client.Set(ctx, keys.OpenCart("alice"), "c", 0).Err(); err != nil {
			t.Fatal(err)
		}
		st, found, err := s.OpenCart(ctx, "alice")
		if err != nil || !found || string(st.Doc) != doc || st.Version != 3 || st.Owner != "alice" {
			t.Fatalf("OpenCart = %+v, found=%v, err=%v", st, found, err)
		}
	})
	t.Run("ErrGarbageVersion", func(t *testing.T) {
		if err := env.Client.HSet(ctx, keys.Cart("bad"), readmodel.FieldVersion, "x", readmodel.FieldDoc, doc).Err(); err != nil {
			t.Fatal(err)
		}
		if st, _, err := s.Cart(ctx, "bad"); err == nil {
			t.Fatalf("Cart with version x = %+v, want an error", st)
		}
	})
}

// TestCart_concurrent: reads that overlap are batched into pipelines; each
// request still gets its own cart, and a missing one stays missing.
func TestCart_concurrent(t *testing.T) {
	env := redistest.MustRedis(t)
	ctx := context.Background()
	s := mustStore(t, env)
	keys := readmodel.Keys{Prefix: env.Prefix, Generation: 1}
	const carts = 32
	for i := range carts {
		id, owner := fmt.Sprintf("c%d", i), fmt.Sprintf("customer-%d", i)
		if err := env.Client.HSet(ctx, keys.Cart(id), readmodel.FieldVersion, i+1, readmodel.FieldOwner, owner,
			readmodel.FieldDoc, `{"cartId":"`+id+`"}`).Err(); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Set(ctx, keys.OpenCart(owner), id, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for n := range 100 {
				i := (g*5 + n) % (carts + 1) // carts+1: one that is missing
				id := fmt.Sprintf("c%d", i)
				st, found, err := s.Cart(ctx, id)
				if err == nil && n%2 == 1 {
					st, found, err = s.OpenCart(ctx, fmt.Sprintf("customer-%d", i))
				}
				switch {
				case err != nil:
					t.Errorf("read %s: %v", id, err)
					return
				case i == carts && found:
					t.Errorf("missing cart %s found: %+v", id, st)
					return
				case i < carts && (!found || string(st.Doc) != `{"cartId":"`+id+`"}` || st.Version != i+1 || st.Owner != fmt.Sprintf("customer-%d", i)):
					t.Errorf("cart %s = %+v, found=%v", id, st, found)
					return
				}
			}
		})
	}
	wg.Wait()
}
