package e2e_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// probe is one request a stranger tries on a cart.
type probe struct {
	name string
	send func(tok, cartID string) (reply, error)
}

func crossProbes(s *system, c *secCart) []probe {
	post := func(path string, body any, kv ...string) func(string, string) (reply, error) {
		return func(tok, id string) (reply, error) {
			return call(http.MethodPost, s.commandURL+"/v1/carts/"+id+"/"+path,
				hdr(tok, append([]string{"Content-Type", "application/json"}, kv...)...), jsonBody(body))
		}
	}
	get := func(suffix string, kv ...string) func(string, string) (reply, error) {
		return func(tok, id string) (reply, error) {
			return call(http.MethodGet, s.queryURL+"/v1/carts/"+id+suffix, hdr(tok, kv...), nil)
		}
	}
	etag := fmt.Sprintf("%q", fmt.Sprint(c.version))
	now := url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
	removal := map[string]any{"productId": "123"}
	change := item("123", 3)
	return []probe{
		{name: "add-item", send: post("add-item", item("123", 1))},
		{name: "add-item/owner-idempotency-key", send: post("add-item", c.keyBody, "Idempotency-Key", c.key)},
		{name: "add-item/if-match-current", send: post("add-item", item("123", 1), "If-Match", etag)},
		{name: "remove-item", send: post("remove-item", removal)},
		{name: "remove-item/product-unavailable", send: post("remove-item", map[string]any{"productId": "123", "reason": "product-unavailable"})},
		{name: "remove-item/owner-idempotency-key", send: post("remove-item", removal, "Idempotency-Key", c.key)},
		// The attacker used this key on their own cart: a stored key must
		// not tell an existing cart from a missing one.
		{name: "add-item/attacker-used-key", send: post("add-item", item("123", 1), "Idempotency-Key", ownerOpenKey)},
		{name: "checkout/attacker-used-key", send: post("checkout", map[string]any{}, "Idempotency-Key", ownerOpenKey)},
		{name: "change-quantity", send: post("change-quantity", change)},
		{name: "change-quantity/owner-idempotency-key", send: post("change-quantity", change, "Idempotency-Key", c.key)},
		{name: "checkout", send: post("checkout", nil)},
		{name: "checkout/owner-idempotency-key", send: post("checkout", map[string]any{}, "Idempotency-Key", c.key)},
		{name: "get", send: get("")},
		{name: "get/at-now", send: get("?at=" + now)},
		{name: "get/if-none-match-current", send: get("", "If-None-Match", etag)},
		{name: "get/minVersion", send: get("?minVersion=1")},
		{name: "get/minVersion-at", send: get(fmt.Sprintf("?minVersion=%d&at=%s", c.version, now))},
		{name: "history", send: get("/history")},
		{name: "history/if-none-match-any", send: get("/history", "If-None-Match", "*")},
		{name: "history/minVersion", send: get("/history?minVersion=1")},
	}
}

// refusal is a refusal with what must not depend on the cart: the body
// with the cart id and request id blanked, and the headers but the per-request ones.
func refusal(r reply, cartID string) string {
	var b problem.Body
	_ = json.Unmarshal(r.Body, &b)
	b.RequestID = ""
	b.Instance = strings.ReplaceAll(b.Instance, cartID, "{id}")
	h := r.Header.Clone()
	for _, k := range []string{"Date", "X-Request-Id", "X-Correlation-Id"} {
		h.Del(k)
	}
	keys := slices.Sorted(maps.Keys(h))
	var out strings.Builder
	fmt.Fprintf(&out, "%d %+v", r.Status, b)
	for _, k := range keys {
		fmt.Fprintf(&out, "\n%s: %s", k, h[k])
	}
	return out.String()
}

func crossCustomer(t *testing.T, s *system, aSub, aTok string, carts []*secCart, aCarts []string) {
	attackers := map[string]string{
		"stranger":  customer("mallory"),
		"uppercase": strings.ToUpper(aSub), // a look-alike subject is someone else
		"padded":    aSub + " ",
	}
	type result struct {
		attacker, cart string
		probe          probe
		attack, base   reply
		id, baseID     string
		err            error
	}
	var results []*result
	for _, name := range slices.Sorted(maps.Keys(attackers)) {
		for _, c := range carts {
			for _, p := range crossProbes(s, c) {
				results = append(results, &result{attacker: name, cart: c.state, probe: p, id: c.id, baseID: uuid.NewString()})
			}
		}
	}
	// Each attacker has no open cart, then opens one with the key the victim
	// opened theirs with, and gets their own.
	own := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(attackers)) {
		tok := token(t, attackers[name], "")
		problemOf(t, do(t, http.MethodGet, s.queryURL+"/v1/customers/me/cart", tok, nil), http.StatusNotFound, "no-open-cart")
		r, err := sendKeyed(s.commandURL+"/v1/carts", tok, ownerOpenKey, map[string]any{})
		var opened commandResult
		if err == nil {
			err = json.Unmarshal(r.Body, &opened)
		}
		if err != nil || r.Status != http.StatusCreated || slices.Contains(aCarts, opened.CartID) {
			t.Fatalf("%s opens a cart with the victim's key: %v %d %s", name, err, r.Status, r.Body)
		}
		own[name] = opened.CartID
	}
	before := s.ownerView(t, aTok, aCarts)

	// Fired all at once: the ?minVersion reads each wait their bound.
	var wg sync.WaitGroup
	for _, r := range results {
		tok := token(t, attackers[r.attacker], "")
		wg.Go(func() {
			var err1, err2 error
			r.attack, err1 = r.probe.send(tok, r.id)
			r.base, err2 = r.probe.send(tok, r.baseID)
			r.err = errors.Join(err1, err2)
		})
	}
	wg.Wait()

	succeeded := 0
	for _, r := range results {
		if r.err == nil && r.attack.Status < 400 {
			succeeded++
		}
		t.Run(r.attacker+"/"+r.cart+"/"+r.probe.name, func(t *testing.T) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			// ?minVersion reads wait their bound first, then answer the
			// same 404 (never 503 read-model-behind: there is nothing of
			// the caller's to be behind on).
			problemOf(t, r.attack, http.StatusNotFound, cart.ErrNotFound.Code)
			if v := r.attack.Header.Get("X-Read-Model-Version"); v != "" {
				t.Errorf("X-Read-Model-Version %q reveals the cart", v)
			}
			if got, want := refusal(r.attack, r.id), refusal(r.base, r.baseID); got != want {
				t.Errorf("the victim's cart answers\n%s\nbut a missing cart\n%s", got, want)
			}
		})
	}
	if after := s.ownerView(t, aTok, aCarts); after != before {
		t.Errorf("the victim's carts changed:\nbefore %s\nafter %s", before, after)
	}
	t.Logf("cross-customer: %d of %d reads and writes on the victim's carts succeeded (%d attackers × %d carts × %d probes)",
		succeeded, len(results), len(attackers), len(carts), len(results)/len(attackers)/len(carts))
	if succeeded != 0 {
		t.Errorf("%d of %d cross-customer requests succeeded", succeeded, len(results))
	}

	// "My cart" is each attacker's own, never the victim's.
	for _, name := range slices.Sorted(maps.Keys(attackers)) {
		r := do(t, http.MethodGet, s.queryURL+"/v1/customers/me/cart?minVersion=1", token(t, attackers[name], ""), nil)
		var doc struct{ CartID, CustomerID string }
		if err := json.Unmarshal(r.Body, &doc); err != nil || r.Status != http.StatusOK ||
			doc.CartID != own[name] || doc.CustomerID != attackers[name] {
			t.Errorf("%s's own cart: %d %s (%v), want %s", name, r.Status, r.Body, err, own[name])
		}
	}
}
