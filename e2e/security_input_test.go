package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/cart-cqrs/cart/pkg/cart"
)

func malformed(t *testing.T, s *system, aTok string, open *secCart, aCarts []string) {
	type tc struct {
		name, method, url, contentType string
		body                           io.Reader
		extra                          []string // header pairs
		status                         int      // 0: any 4xx
		code                           string
	}
	big := `{"productId":"123","quantity":1,"pad":"` + strings.Repeat("x", 70<<10) + `"}`
	var cases []tc
	cmdRoutes := map[string]string{"open": "/v1/carts", "add-item": "/v1/carts/" + open.id + "/add-item",
		"remove-item": "/v1/carts/" + open.id + "/remove-item", "change-quantity": "/v1/carts/" + open.id + "/change-quantity",
		"checkout": "/v1/carts/" + open.id + "/checkout"}
	for _, route := range slices.Sorted(maps.Keys(cmdRoutes)) {
		u := s.commandURL + cmdRoutes[route]
		add := func(name, ct, body string, status int, code string, extra ...string) {
			cases = append(cases, tc{route + "/" + name, http.MethodPost, u, ct, strings.NewReader(body), extra, status, code})
		}
		const js = "application/json"
		valid := `{"productId":"123","quantity":1}`
		switch route {
		case "open", "checkout":
			valid = `{}`
		case "remove-item":
			valid = `{"productId":"123"}`
		}
		add("not-json", js, "not json", 400, "malformed-body")
		add("truncated", js, `{"productId":`, 400, "malformed-body")
		add("array", js, `[]`, 400, "malformed-body")
		add("null", js, `null`, 400, "malformed-body")
		add("trailing-data", js, valid+`{}`, 400, "malformed-body")
		add("text-plain", "text/plain", valid, 415, "unsupported-media-type")
		add("no-content-type", "", valid, 415, "unsupported-media-type")
		add("form", "application/x-www-form-urlencoded", "productId=123&quantity=1", 415, "unsupported-media-type")
		add("unknown-field-unitPrice", js, `{"productId":"123","quantity":1,"unitPrice":1}`, 400, "malformed-body")
		add("unknown-field-customerId", js, `{"customerId":"someone-else"}`, 400, "malformed-body")
		add("unknown-field-null", js, `{"note":null}`, 400, "malformed-body")
		add("over-64KiB", js, big, 413, "body-too-large")
		cases = append(cases, tc{route + "/over-64KiB-chunked", http.MethodPost, u, js,
			io.MultiReader(strings.NewReader(big)), nil, 413, "body-too-large"}) // no Content-Length
		add("idempotency-key-too-long", js, valid, 400, "invalid-idempotency-key", "Idempotency-Key", strings.Repeat("k", 256))
		if route != "open" {
			add("if-match-unquoted", js, valid, 400, "malformed-if-match", "If-Match", "3")
			add("cart-id-not-uuid", js, valid, 404, "cart-not-found")
			cases[len(cases)-1].url = strings.Replace(u, open.id, "not-a-uuid", 1)
		}
		if route == "add-item" || route == "change-quantity" {
			for _, q := range []string{"0", "100", "-1"} {
				add("quantity-"+q, js, `{"productId":"123","quantity":`+q+`}`, 422, "invalid-quantity")
			}
			for _, q := range []string{`"two"`, "1.5", "1e2", "null"} {
				add("quantity-"+q, js, `{"productId":"123","quantity":`+q+`}`, 400, "malformed-body")
			}
			// Names are exact and appear once: no other case, no last-one-wins.
			add("name-upper-case", js, `{"PRODUCTID":"123","quantity":1}`, 400, "malformed-body")
			add("name-title-case", js, `{"productId":"123","Quantity":1}`, 400, "malformed-body")
			add("name-duplicate", js, `{"productId":"123","quantity":1,"quantity":50}`, 400, "malformed-body")
			add("productId-null", js, `{"productId":null,"quantity":1}`, 400, "malformed-body")
			add("productId-number", js, `{"productId":123,"quantity":1}`, 400, "malformed-body")
			add("productId-empty", js, `{"productId":"","quantity":1}`, 422, "invalid-product-id")
			add("productId-NUL", js, `{"productId":"12\u00003","quantity":1}`, 0, "")
		}
		if route == "remove-item" {
			add("reason-unknown", js, `{"productId":"123","reason":"admin"}`, 422, "invalid-reason")
			add("reason-null", js, `{"productId":"123","reason":null}`, 400, "malformed-body")
			add("reason-duplicate", js, `{"productId":"123","reason":"customer","reason":"product-unavailable"}`, 400, "malformed-body")
			add("reason-title-case", js, `{"productId":"123","Reason":"customer"}`, 400, "malformed-body")
		}
	}
	q := func(name, path string, status int, code string) {
		cases = append(cases, tc{name: name, method: http.MethodGet, url: s.queryURL + path, status: status, code: code})
	}
	for _, mv := range []string{"0", "-1", "abc", "1.5", "", "99999999999999999999"} {
		arg := "?minVersion=" + url.QueryEscape(mv)
		q("get/minVersion="+mv, "/v1/carts/"+open.id+arg, 400, "invalid-min-version")
		q("history/minVersion="+mv, "/v1/carts/"+open.id+"/history"+arg, 400, "invalid-min-version")
		q("me/minVersion="+mv, "/v1/customers/me/cart"+arg, 400, "invalid-min-version")
	}
	for _, at := range []string{"yesterday", "2026-02-30T00:00:00Z", "2026-03-01", "2026-03-01T09:30:00 01:00", ""} {
		q("get/at="+at, "/v1/carts/"+open.id+"?at="+url.QueryEscape(at), 400, "invalid-at")
	}
	q("get/cart-id-not-uuid", "/v1/carts/not-a-uuid", 404, "cart-not-found")
	q("history/cart-id-not-uuid", "/v1/carts/not-a-uuid/history", 404, "cart-not-found")

	before := s.ownerView(t, aTok, aCarts)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := hdr(aTok, c.extra...)
			if c.contentType != "" {
				h.Set("Content-Type", c.contentType)
			}
			r, err := call(c.method, c.url, h, c.body)
			if err != nil {
				t.Fatal(err)
			}
			problemOf(t, r, c.status, c.code)
		})
	}
	if after := s.ownerView(t, aTok, aCarts); after != before {
		t.Errorf("malformed input changed something:\nbefore %s\nafter %s", before, after)
	}
	t.Logf("malformed input: %d requests, all must be 4xx problems", len(cases))
}

func adminOnly(t *testing.T, s *system, aSub, aTok string, carts []*secCart, aCarts []string) {
	open := carts[1]
	removal := map[string]any{"productId": "456", "reason": cart.ReasonProductUnavailable}
	path := s.commandURL + "/v1/carts/" + open.id + "/remove-item"
	before := s.ownerView(t, aTok, aCarts)
	// The owner, also with roles that merely look privileged.
	for _, role := range []string{"", "Admin", "ADMIN", "admin ", "root", "customer", "systems"} {
		t.Run("owner-role-"+role, func(t *testing.T) {
			r := do(t, http.MethodPost, path, token(t, aSub, role), removal)
			problemOf(t, r, http.StatusForbidden, cart.ErrReasonNotPermitted.Code)
		})
	}
	if after := s.ownerView(t, aTok, aCarts); after != before {
		t.Fatalf("a refused removal changed something:\nbefore %s\nafter %s", before, after)
	}

	opsTok := token(t, "ops", "admin")
	res := s.command(t, opsTok, "/v1/carts/"+open.id+"/remove-item", removal)
	if res.Version != open.version+1 {
		t.Fatalf("admin removal: version %d, want %d", res.Version, open.version+1)
	}
	_, evs := s.replay(t, open.id)
	last := evs[len(evs)-1]
	var data struct{ ProductID, Reason string }
	if err := json.Unmarshal(last.Data, &data); err != nil || last.Type != cart.TypeItemRemoved ||
		last.Metadata.Actor != "ops" || data.Reason != cart.ReasonProductUnavailable || data.ProductID != "456" {
		t.Errorf("stored event %s by %q: %s (%v)", last.Type, last.Metadata.Actor, last.Data, err)
	}

	// The owner's audit trail says who removed it and why; the admin and a
	// system caller may read the owner's carts.
	for name, tok := range map[string]string{"owner": aTok, "admin": opsTok, "system": token(t, "catalog-sync", "system")} {
		t.Run("history-as-"+name, func(t *testing.T) {
			r := do(t, http.MethodGet, fmt.Sprintf("%s/v1/carts/%s/history?minVersion=%d", s.queryURL, open.id, res.Version), tok, nil)
			var h struct {
				Events []struct{ Type, Actor, Reason string }
			}
			if err := json.Unmarshal(r.Body, &h); err != nil || r.Status != http.StatusOK || len(h.Events) != res.Version {
				t.Fatalf("history: %d %s (%v)", r.Status, r.Body, err)
			}
			if e := h.Events[len(h.Events)-1]; e.Type != cart.TypeItemRemoved || e.Actor != "ops" || e.Reason != cart.ReasonProductUnavailable {
				t.Errorf("last history event %+v", e)
			}
		})
		t.Run("read-as-"+name, func(t *testing.T) {
			for _, c := range carts {
				r := do(t, http.MethodGet, s.queryURL+"/v1/carts/"+c.id, tok, nil)
				var doc struct{ CustomerID string }
				if err := json.Unmarshal(r.Body, &doc); err != nil || r.Status != http.StatusOK || doc.CustomerID != aSub {
					t.Errorf("%s cart: %d %s (%v)", c.state, r.Status, r.Body, err)
				}
			}
		})
	}
}
