package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
)

// events are a cart's first n stored events and the state they fold to.
func events(t testing.TB, cartID, customer string, n int) ([]envelope.Envelope, cart.State) {
	t.Helper()
	evs := []cart.Event{cart.Opened{CustomerID: customer}}
	for len(evs) < n {
		evs = append(evs, cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 1})
	}
	var (
		envs []envelope.Envelope
		s    cart.State
	)
	for i, ev := range evs {
		e, err := envelope.New("id-"+cartID+"-"+string(rune('a'+i)), cartID, i+1, ev, envelope.Metadata{Actor: customer}, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.Recorded()
		if err != nil {
			t.Fatal(err)
		}
		envs, s = append(envs, e), cart.Evolve(s, r)
	}
	return envs, s
}

func (f fixture) history(t *testing.T, cartID string) []int {
	t.Helper()
	raw, err := f.env.Client.LRange(context.Background(), f.keys.History(cartID), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	versions := make([]int, len(raw))
	for i, r := range raw {
		var h readmodel.HistoryEntry
		if err := json.Unmarshal([]byte(r), &h); err != nil {
			t.Fatal(err)
		}
		versions[i] = h.Version
	}
	return versions
}

func TestStore_HistoryIsGuardedWithTheDocument(t *testing.T) {
	f := mustStore(t)
	ctx := context.Background()
	ps := f.env.Client.Subscribe(ctx, f.keys.Updates())
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.ReceiveTimeout(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	envs, s3 := events(t, "h", "alice", 3)
	_, s2 := events(t, "h", "alice", 2)

	if err := f.save(t, documents.Write{CartID: "h", From: 0, State: s2, Changed: true, History: entries(envs[:2])}); err != nil {
		t.Fatal(err)
	}
	if got := f.history(t, "h"); !equal(got, 1, 2) {
		t.Fatalf("history = %v, want [1 2]", got)
	}
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Payload != "h 2 alice" {
		t.Errorf("update = %q, want %q", msg.Payload, "h 2 alice")
	}

	t.Run("DuplicateAppendsNothing", func(t *testing.T) {
		err := f.save(t, documents.Write{CartID: "h", From: 0, State: s2, Changed: true, History: entries(envs[:2])})
		if !errors.Is(err, documents.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
		if got := f.history(t, "h"); !equal(got, 1, 2) {
			t.Fatalf("history = %v, want [1 2]", got)
		}
	})
	t.Run("ErrHistoryLength", func(t *testing.T) {
		err := f.save(t, documents.Write{CartID: "h", From: 2, State: s3, Changed: true, History: entries(envs[2:]), HistoryLen: 1})
		if !errors.Is(err, documents.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
		if got := f.history(t, "h"); !equal(got, 1, 2) {
			t.Fatalf("history = %v, want [1 2]", got)
		}
	})
	t.Run("Append", func(t *testing.T) {
		if err := f.save(t, documents.Write{CartID: "h", From: 2, State: s3, Changed: true, History: entries(envs[2:]), HistoryLen: 2}); err != nil {
			t.Fatal(err)
		}
		if got := f.history(t, "h"); !equal(got, 1, 2, 3) {
			t.Fatalf("history = %v, want [1 2 3]", got)
		}
		msg, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Payload != "h 3 alice" {
			t.Errorf("update = %q, want %q", msg.Payload, "h 3 alice")
		}
	})
	t.Run("Replace", func(t *testing.T) {
		if err := f.env.Client.LPop(ctx, f.keys.History("h")).Err(); err != nil {
			t.Fatal(err)
		}
		// The stored document itself, its history rebuilt: no new version.
		if err := f.save(t, documents.Write{CartID: "h", From: 3, State: s3, History: entries(envs), HistoryLen: 2, ReplaceHistory: true}); err != nil {
			t.Fatal(err)
		}
		if got := f.history(t, "h"); !equal(got, 1, 2, 3) {
			t.Fatalf("history = %v, want [1 2 3]", got)
		}
		docs := f.load(t, "h")
		if d := docs["h"]; d.Version != 3 || d.HistoryLen != 3 {
			t.Errorf("Load = version %d, history %d; want 3 and 3", d.Version, d.HistoryLen)
		}
		// Nothing was announced for a write that changed no version: the
		// next message is a marker sent after it.
		if err := f.env.Client.Publish(ctx, f.keys.Updates(), "marker").Err(); err != nil {
			t.Fatal(err)
		}
		if msg, err := ps.ReceiveMessage(ctx); err != nil || msg.Payload != "marker" {
			t.Errorf("next message = %v, %v; want the marker", msg, err)
		}
	})
}

func entries(envs []envelope.Envelope) []readmodel.HistoryEntry {
	out := make([]readmodel.HistoryEntry, len(envs))
	for i, e := range envs {
		out[i] = readmodel.NewHistoryEntry(e)
	}
	return out
}

func equal(got []int, want ...int) bool { return slices.Equal(got, want) }
