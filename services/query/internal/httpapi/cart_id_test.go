package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
)

// TestCartIDSpelling: a cart id is a UUID, case-insensitive as RFC 9562 has
// it, so the owner's id in upper or mixed case reads the same cart as the
// stored lower-case one (the command API accepts it too) — before, it was a
// 404 here and a 200 there. The other textual forms of a UUID are not ids.
func TestCartIDSpelling(t *testing.T) {
	a := newLiveAPI(t, 10*time.Second) // long: the wait below must end by an update
	id := newCartID()
	envs := stream(id, t0, cart.Opened{CustomerID: "alice"}, mug, bean)
	doc := a.project(1, envs[:2], true)
	upper, mixed := strings.ToUpper(id), strings.ToUpper(id[:18])+id[18:]

	for name, spelling := range map[string]string{"Upper": upper, "Mixed": mixed} {
		t.Run(name, func(t *testing.T) {
			wantDoc(t, get(t, a.e, "/v1/carts/"+spelling, "alice", ""), doc, 2)
			wantDoc(t, get(t, a.e, "/v1/carts/"+spelling+"?minVersion=2", "alice", ""), doc, 2)
			rec := get(t, a.e, "/v1/carts/"+spelling+"/history", "alice", "")
			var h httpapi.History
			if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil || rec.Code != http.StatusOK {
				t.Fatalf("history: %d %s (%v)", rec.Code, rec.Body, err)
			}
			if h.CartID != id || h.Version != 2 || len(h.Events) != 2 {
				t.Errorf("history of %s, v%d, %d events; want %s v2, 2 events", h.CartID, h.Version, len(h.Events), id)
			}
			rec = get(t, a.e, "/v1/carts/"+spelling+"?at=2026-03-01T09:00:00Z", "alice", "")
			var past struct {
				CartID  string `json:"cartId"`
				Version int    `json:"version"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &past); err != nil || rec.Code != http.StatusOK || past.CartID != id || past.Version != 1 {
				t.Errorf("at t0: %d %s (%v), want %s v1", rec.Code, rec.Body, err, id)
			}
			wantProblem(t, get(t, a.e, "/v1/carts/"+spelling, "mallory", ""), http.StatusNotFound, httpapi.CodeCartNotFound)
		})
	}
	t.Run("MinVersionWokenUnderTheStoredID", func(t *testing.T) {
		done := serveAsync(t, a.e, context.Background(), "/v1/carts/"+upper+"?minVersion=3", "alice")
		eventually(t, "the request waits", func() bool { return a.updates.Waiters() == 1 })
		doc := a.project(1, envs, true)
		wantDoc(t, <-done, doc, 3)
	})
	for name, spelling := range map[string]string{
		"Braces":    "%7B" + id + "%7D",
		"URN":       "urn:uuid:" + id,
		"NoHyphens": strings.ReplaceAll(id, "-", ""),
	} {
		t.Run(name, func(t *testing.T) {
			wantProblem(t, get(t, a.e, "/v1/carts/"+spelling, "alice", ""), http.StatusNotFound, httpapi.CodeCartNotFound)
			wantProblem(t, get(t, a.e, "/v1/carts/"+spelling+"/history", "alice", ""), http.StatusNotFound, httpapi.CodeCartNotFound)
		})
	}
}
