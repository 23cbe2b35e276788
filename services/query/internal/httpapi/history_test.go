package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/jsontest"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
)

// article is the cart article's example, checked out: add 123×2, change
// 123→1, add 456×2, remove 123 (the catalog took it away), change 456→3.
func article(id string) []envelope.Envelope {
	return stream(id, t0,
		cart.Opened{CustomerID: "alice"},
		cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 2},
		cart.QuantityChanged{ProductID: "123", OldQuantity: 2, NewQuantity: 1},
		mug,
		cart.ItemRemoved{ProductID: "123", Quantity: 1, Reason: cart.ReasonProductUnavailable},
		cart.QuantityChanged{ProductID: "456", OldQuantity: 2, NewQuantity: 3},
		cart.CheckedOut{Lines: []cart.Line{{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 3, LineTotal: 3750}},
			ItemCount: 3, Total: 3750, Currency: "EUR"},
	)
}

func TestGetHistory(t *testing.T) { storedFormats(t, testGetHistory) }

func testGetHistory(t *testing.T, a *api) {
	id := newCartID()
	envs := article(id)
	a.project(1, envs, false)
	path := "/v1/carts/" + id + "/history"

	rec := get(t, a.e, path, "alice", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("ETag"); got != `"7"` {
		t.Errorf("ETag = %s, want \"7\"", got)
	}
	var h httpapi.History
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
		t.Fatal(err)
	}
	if h.CartID != id || h.Version != 7 || len(h.Events) != 7 {
		t.Fatalf("history = %s", rec.Body)
	}
	for i, e := range envs {
		got := h.Events[i]
		if got.Version != i+1 || got.Type != e.Type || got.SchemaVersion != e.SchemaVersion ||
			!got.OccurredAt.Equal(e.OccurredAt) || got.Actor != e.Metadata.Actor || !jsontest.Equal(got.Data, e.Data) {
			t.Errorf("event %d = %+v, want %s v%d %s by %s: %s", i, got, e.Type, e.Version, e.OccurredAt, e.Metadata.Actor, e.Data)
		}
		wantReason := ""
		if e.Type == cart.TypeItemRemoved {
			wantReason = cart.ReasonProductUnavailable
		}
		if got.Reason != wantReason {
			t.Errorf("event %d: reason %q, want %q", i, got.Reason, wantReason)
		}
	}

	t.Run("NotModified", func(t *testing.T) {
		rec := get(t, a.e, path, "alice", "", "If-None-Match", `"7"`)
		if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 || rec.Header().Get("ETag") != `"7"` {
			t.Errorf("status = %d, ETag %q, body %q; want 304", rec.Code, rec.Header().Get("ETag"), rec.Body)
		}
	})
	t.Run("SystemReadsAnyCart", func(t *testing.T) {
		if rec := get(t, a.e, path, "support-tool", "system"); rec.Code != http.StatusOK {
			t.Errorf("status = %d: %s", rec.Code, rec.Body)
		}
	})
	missing := wantProblem(t, get(t, a.e, "/v1/carts/"+newCartID()+"/history", "alice", ""), http.StatusNotFound, httpapi.CodeCartNotFound)
	t.Run("SomeoneElsesCartLooksMissing", func(t *testing.T) {
		rec := get(t, a.e, path, "mallory", "", "If-None-Match", "*")
		if got := wantProblem(t, rec, http.StatusNotFound, httpapi.CodeCartNotFound); got != missing {
			t.Errorf("someone else's cart = %+v\nmissing cart = %+v", got, missing)
		}
		if rec.Header().Get("ETag") != "" {
			t.Errorf("ETag leaked: %q", rec.Header().Get("ETag"))
		}
	})
	t.Run("NotAUUID", func(t *testing.T) {
		wantProblem(t, get(t, a.e, "/v1/carts/123/history", "alice", ""), http.StatusNotFound, httpapi.CodeCartNotFound)
	})
	t.Run("ErrIncomplete", func(t *testing.T) {
		// A document projected before histories existed: unavailable until
		// the projector rebuilds the list, never a partial audit trail.
		id := newCartID()
		a.put(1, fold(t, article(id)))
		wantProblem(t, get(t, a.e, "/v1/carts/"+id+"/history", "alice", ""), http.StatusServiceUnavailable, httpapi.CodeReadModelUnavailable)
		wantProblem(t, get(t, a.e, "/v1/carts/"+id+"?at=2026-03-01T09:30:00Z", "alice", ""), http.StatusServiceUnavailable, httpapi.CodeReadModelUnavailable)
	})
}

func TestGetCartAt(t *testing.T) { storedFormats(t, testGetCartAt) }

func testGetCartAt(t *testing.T, a *api) {
	id := newCartID()
	envs := article(id)
	current := a.project(1, envs, false)
	path := "/v1/carts/" + id

	// The document the one shared fold makes of the events up to version n.
	want := func(n int) string {
		b, err := json.Marshal(readmodel.FromState(fold(t, envs[:n])))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name    string
		at      time.Time
		version int
	}{
		{"Opened", t0, 1},
		{"BetweenTwoEvents", t0.Add(2*time.Minute + 30*time.Second), 3},
		{"JustBeforeAnEvent", t0.Add(4*time.Minute - time.Nanosecond), 4},
		{"ItemRemoved", t0.Add(4 * time.Minute), 5},
		{"CheckedOut", t0.Add(6 * time.Minute), 7},
		{"LongAfter", t0.Add(24 * time.Hour), 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := "?at=" + url.QueryEscape(tc.at.Format(time.RFC3339Nano))
			rec := get(t, a.e, path+q, "alice", "")
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d: %s", rec.Code, rec.Body)
			}
			if got := rec.Body.String(); got != want(tc.version) {
				t.Errorf("cart at %s =\n%s\nwant the fold of v1..v%d\n%s", tc.at, got, tc.version, want(tc.version))
			}
			etag := `"` + strconv.Itoa(tc.version) + `"`
			if got := rec.Header().Get("ETag"); got != etag {
				t.Errorf("ETag = %s, want %s", got, etag)
			}
			if rec := get(t, a.e, path+q, "alice", "", "If-None-Match", etag); rec.Code != http.StatusNotModified {
				t.Errorf("If-None-Match %s: status = %d, want 304", etag, rec.Code)
			}
		})
	}
	t.Run("NowIsTheStoredDocument", func(t *testing.T) {
		rec := get(t, a.e, path+"?at="+url.QueryEscape(time.Now().Format(time.RFC3339)), "alice", "")
		if rec.Body.String() != string(current) {
			t.Errorf("cart now =\n%s\nwant the stored document\n%s", rec.Body, current)
		}
	})
	t.Run("OtherOffset", func(t *testing.T) {
		rec := get(t, a.e, path+"?at="+url.QueryEscape("2026-03-01T10:02:30+01:00"), "alice", "")
		if rec.Body.String() != want(3) {
			t.Errorf("cart at 10:02:30+01:00 = %s, want v3", rec.Body)
		}
	})
	t.Run("BeforeTheCartExisted", func(t *testing.T) {
		wantProblem(t, get(t, a.e, path+"?at=2026-03-01T08:59:59Z", "alice", ""), http.StatusNotFound, httpapi.CodeCartNotFoundAt)
	})
	t.Run("SomeoneElsesCartLooksMissing", func(t *testing.T) {
		for _, at := range []string{"2026-03-01T08:59:59Z", "2026-03-01T09:30:00Z"} {
			wantProblem(t, get(t, a.e, path+"?at="+at, "mallory", ""), http.StatusNotFound, httpapi.CodeCartNotFound)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		for _, at := range []string{"", "yesterday", "2026-03-01", "2026-03-01T09:00:00", "2026-03-01T09:00:00 01:00", "1709283600"} {
			wantProblem(t, get(t, a.e, path+"?at="+url.QueryEscape(at), "alice", ""), http.StatusBadRequest, httpapi.CodeInvalidAt)
		}
		// Unencoded, the + of an offset arrives as a space: still a 400.
		wantProblem(t, get(t, a.e, path+"?at=2026-03-01T10:00:00+01:00", "alice", ""), http.StatusBadRequest, httpapi.CodeInvalidAt)
	})
}

// TestSkippedEvent: an event an operator skipped (the projector could not
// apply it) shows in the history as stored, marked skipped and changing
// nothing, and time travel passes over it.
func TestSkippedEvent(t *testing.T) {
	a := newAPI(t)
	id := newCartID()
	envs := stream(id, t0, cart.Opened{CustomerID: "alice"}, mug, mug)
	poison := envs[1]
	poison.SchemaVersion, poison.Data = 99, json.RawMessage(`{"from":"the future"}`)
	kept := []envelope.Envelope{envs[0], envs[2]}
	s := fold(t, kept)
	s.Version = 3
	doc, err := json.Marshal(readmodel.FromState(s))
	if err != nil {
		t.Fatal(err)
	}
	keys := readmodel.Keys{Prefix: a.redis.Prefix, Generation: 1}
	var entries []any
	for _, e := range []envelope.Envelope{envs[0], poison, envs[2]} {
		h := readmodel.NewHistoryEntry(e)
		h.Skipped = e.Version == 2
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, b)
	}
	ctx := t.Context()
	if err := a.redis.Client.HSet(ctx, keys.Cart(id), readmodel.FieldVersion, 3, readmodel.FieldDoc, doc).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.redis.Client.RPush(ctx, keys.History(id), entries...).Err(); err != nil {
		t.Fatal(err)
	}

	rec := get(t, a.e, "/v1/carts/"+id+"/history", "alice", "")
	var h httpapi.History
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &h) != nil || len(h.Events) != 3 {
		t.Fatalf("history = %d %s", rec.Code, rec.Body)
	}
	if e := h.Events[1]; !e.Skipped || e.SchemaVersion != 99 || !jsontest.Equal(e.Data, poison.Data) || h.Events[0].Skipped || h.Events[2].Skipped {
		t.Errorf("history events = %+v; want only version 2 skipped, as stored", h.Events)
	}
	for at, wantQty := range map[time.Time]int{t0.Add(time.Minute): 0, t0.Add(2 * time.Minute): mug.Quantity} {
		rec := get(t, a.e, "/v1/carts/"+id+"?at="+url.QueryEscape(at.Format(time.RFC3339Nano)), "alice", "")
		var c readmodel.Cart
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &c) != nil {
			t.Fatalf("?at=%s = %d %s", at, rec.Code, rec.Body)
		}
		if c.ItemCount != wantQty {
			t.Errorf("?at=%s: %d items, want %d (the skipped addition counts for nothing)", at, c.ItemCount, wantQty)
		}
	}
}
