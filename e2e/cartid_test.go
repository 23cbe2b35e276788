package e2e_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestCartIDCase: both APIs read a cart id by one rule — a UUID, in any case,
// answered in its stored lower-case spelling — so an id a client upper-cased
// (as some UUID libraries print them) works on the query side as it does on
// the command side. Before, the command API accepted it and the query API
// answered 404.
func TestCartIDCase(t *testing.T) {
	s := mustStart(t, options{})
	tok := token(t, customer("upper"), "")
	id := s.command(t, tok, "/v1/carts", nil).CartID
	upper := strings.ToUpper(id)

	res := s.command(t, tok, "/v1/carts/"+upper+"/add-item", item("123", 2))
	if res.CartID != id || res.Version != 2 {
		t.Fatalf("add-item on %s: %+v, want %s v2", upper, res, id)
	}
	r := do(t, http.MethodGet, s.queryURL+"/v1/carts/"+upper+"?minVersion="+strconv.Itoa(res.Version), tok, nil)
	var doc struct {
		CartID  string `json:"cartId"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil || r.Status != http.StatusOK || doc.CartID != id || doc.Version != 2 {
		t.Fatalf("GET %s?minVersion=2: %d %s (%v), want %s v2", upper, r.Status, r.Body, err, id)
	}
	r = do(t, http.MethodGet, s.queryURL+"/v1/carts/"+upper+"/history", tok, nil)
	if err := json.Unmarshal(r.Body, &doc); err != nil || r.Status != http.StatusOK || doc.CartID != id || doc.Version != 2 {
		t.Fatalf("GET %s/history: %d %s (%v), want %s v2", upper, r.Status, r.Body, err, id)
	}

	// Other spellings of the same UUID are not cart ids, on either side.
	for _, other := range []string{"urn:uuid:" + id, strings.ReplaceAll(id, "-", "")} {
		problemOf(t, do(t, http.MethodPost, s.commandURL+"/v1/carts/"+other+"/add-item", tok, item("123", 1)), http.StatusNotFound, "cart-not-found")
		problemOf(t, do(t, http.MethodGet, s.queryURL+"/v1/carts/"+other, tok, nil), http.StatusNotFound, "cart-not-found")
	}
	if n := s.eventCount(t, id); n != 2 {
		t.Errorf("%d events, want 2", n)
	}
}
