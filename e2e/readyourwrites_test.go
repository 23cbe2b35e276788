package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// TestReadYourWrites sends 1,000 command → query pairs, one after the other,
// for a few customers; each query passes the version its command returned
// as ?minVersion. The query must never serve a stale cart: it has exactly
// that version, and it is the fold of the cart's events in the event log.
func TestReadYourWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 round trips")
	}
	const pairs = 1000
	s := mustStart(t, options{})

	// Each customer's carts go through the same seven commands: open, three
	// changes of lines, a removal, another line, checkout — then a new cart.
	steps := []struct {
		path string
		body any
	}{
		{"", nil}, // POST /v1/carts
		{"add-item", item("123", 1)},
		{"add-item", item("456", 2)},
		{"change-quantity", item("123", 3)},
		{"remove-item", map[string]any{"productId": "456"}},
		{"add-item", item("789", 1)},
		{"checkout", nil},
	}
	type customerState struct {
		tok    string
		cartID string
		step   int
	}
	customers := make([]*customerState, 4)
	for i := range customers {
		customers[i] = &customerState{tok: token(t, customer("ryw"), "")}
	}

	waits := make([]time.Duration, 0, pairs)
	for i := range pairs {
		c := customers[i%len(customers)]
		step := steps[c.step%len(steps)]
		path := "/v1/carts"
		if step.path != "" {
			path = "/v1/carts/" + c.cartID + "/" + step.path
		}
		res := s.command(t, c.tok, path, step.body)
		c.cartID = res.CartID
		c.step++

		// Half the reads of an open cart go through "my cart".
		query := "/v1/carts/" + res.CartID
		if step.path != "checkout" && i%2 == 1 {
			query = "/v1/customers/me/cart"
		}
		start := time.Now()
		r := do(t, http.MethodGet, s.queryURL+query+"?minVersion="+strconv.Itoa(res.Version), c.tok, nil)
		waits = append(waits, time.Since(start))
		if r.Status != http.StatusOK {
			t.Fatalf("pair %d: POST %s → v%d, GET %s?minVersion=%d: %d %s (%s: %s)", i, path, res.Version, query,
				res.Version, r.Status, r.Body, readModelVersionHeader, r.Header.Get(readModelVersionHeader))
		}
		var doc readmodel.Cart
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			t.Fatalf("pair %d: %v in %s", i, err, r.Body)
		}
		if doc.Version != res.Version || doc.CartID != res.CartID {
			t.Fatalf("pair %d: stale read: POST %s returned %s v%d, GET %s served %s v%d", i, path,
				res.CartID, res.Version, query, doc.CartID, doc.Version)
		}
		if want, _ := s.replay(t, res.CartID); !jsonEqual(doc, want) {
			t.Fatalf("pair %d: GET %s served\n%s\nthe event log folds to\n%+v", i, query, r.Body, want)
		}
	}

	slices.Sort(waits)
	pct := func(p float64) time.Duration { return waits[int(p*float64(len(waits)-1))] }
	t.Logf("%d command→query pairs: GET ?minVersion latency p50 %s, p90 %s, p99 %s, max %s",
		pairs, pct(0.50), pct(0.90), pct(0.99), waits[len(waits)-1])
	t.Logf("query service: %s", waitMetrics(t, s))
}

const readModelVersionHeader = "X-Read-Model-Version"

// waitMetrics summarizes the query service's ?minVersion metrics: how many
// reads found their version at once, how many waited, how many gave up.
func waitMetrics(t *testing.T, s *system) string {
	t.Helper()
	resp, err := http.Get(s.queryMetrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var immediate, total, sum, giveUps string
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		name, value, _ := strings.Cut(line, " ")
		switch name {
		case `cart_query_min_version_wait_seconds_bucket{le="0"}`:
			immediate = value
		case "cart_query_min_version_wait_seconds_count":
			total = value
		case "cart_query_min_version_wait_seconds_sum":
			sum = value
		case "cart_query_min_version_give_ups_total":
			giveUps = value
		}
	}
	return fmt.Sprintf("%s of %s ?minVersion reads had their version at once, the rest waited %ss in all; %s gave up",
		immediate, total, sum, giveUps)
}

// TestHistoryAndTimeTravel reads a cart's audit trail and its past states
// through the query service and checks them against the event log.
func TestHistoryAndTimeTravel(t *testing.T) {
	s := mustStart(t, options{})
	tok := token(t, customer("audit"), "")
	opened := s.command(t, tok, "/v1/carts", nil)
	id := opened.CartID
	var last commandResult
	for _, step := range []struct {
		path string
		body any
	}{
		{"add-item", item("123", 2)},
		{"add-item", item("456", 1)},
		{"remove-item", map[string]any{"productId": "123"}},
		{"checkout", nil},
	} {
		last = s.command(t, tok, "/v1/carts/"+id+"/"+step.path, step.body)
	}

	r := do(t, http.MethodGet, s.queryURL+"/v1/carts/"+id+"/history?minVersion="+strconv.Itoa(last.Version), tok, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("history: %d %s", r.Status, r.Body)
	}
	var h struct {
		CartID  string `json:"cartId"`
		Version int    `json:"version"`
		Events  []struct {
			Version    int       `json:"version"`
			Type       string    `json:"type"`
			OccurredAt time.Time `json:"occurredAt"`
			Actor      string    `json:"actor"`
			Reason     string    `json:"reason"`
		} `json:"events"`
	}
	if err := json.Unmarshal(r.Body, &h); err != nil {
		t.Fatal(err)
	}
	_, stored := s.replay(t, id)
	if h.CartID != id || h.Version != last.Version || len(h.Events) != len(stored) {
		t.Fatalf("history %s\nwant %d events", r.Body, len(stored))
	}
	for i, e := range stored {
		got := h.Events[i]
		if got.Version != e.Version || got.Type != e.Type || !got.OccurredAt.Equal(e.OccurredAt) || got.Actor != e.Metadata.Actor {
			t.Errorf("history event %d = %+v, stored %s v%d at %s by %q", i, got, e.Type, e.Version, e.OccurredAt, e.Metadata.Actor)
		}
		if e.Type == cart.TypeItemRemoved && got.Reason != cart.ReasonCustomer {
			t.Errorf("removal reason %q, want %q", got.Reason, cart.ReasonCustomer)
		}
	}

	// The cart at each event's time is the fold of the events up to it.
	for n, e := range stored {
		r := do(t, http.MethodGet, s.queryURL+"/v1/carts/"+id+"?at="+url.QueryEscape(e.OccurredAt.Format(time.RFC3339Nano)), tok, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("at v%d's time: %d %s", e.Version, r.Status, r.Body)
		}
		st := cart.State{}
		for _, prior := range stored[:n+1] {
			rec, err := prior.Recorded()
			if err != nil {
				t.Fatal(err)
			}
			st = cart.Evolve(st, rec)
		}
		var doc readmodel.Cart
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(doc, readmodel.FromState(st)) {
			t.Errorf("cart at v%d's time = %s\nwant %+v", e.Version, r.Body, readmodel.FromState(st))
		}
	}
	before := stored[0].OccurredAt.Add(-time.Second).Format(time.RFC3339Nano)
	if r := do(t, http.MethodGet, s.queryURL+"/v1/carts/"+id+"?at="+url.QueryEscape(before), tok, nil); r.Status != http.StatusNotFound {
		t.Errorf("before the cart existed: %d %s", r.Status, r.Body)
	}
}
