package load

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cart-cqrs/cart/pkg/auth"
)

// fakeAPI serves the cart API's routes with the cart's rules, in memory and
// always consistent, so that a run's requests can be checked one by one:
// every command the load generator sends must be one the real service
// accepts, except those the fake fails on purpose.
type fakeAPI struct {
	t        *testing.T
	verifier *auth.Verifier
	// failEvery makes every n-th add-item a 503 that changes nothing.
	failEvery int

	mu         sync.Mutex
	carts      map[string]*fakeCart
	open       map[string]string // customer → open cart
	accepted   map[string]int    // op name → 2xx answers to commands
	reopened   int               // opens answered 200 (the cart existed)
	injected   int               // failures made on purpose
	violations []string          // requests the real service would refuse
	adds       int
	reads      int
}

type fakeCart struct {
	id, customer string
	version      int
	closed       bool
	lines        map[string]int
	order        []string
}

func newFakeAPI(t *testing.T, cfg auth.Config, failEvery int) *fakeAPI {
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeAPI{t: t, verifier: v, failEvery: failEvery,
		carts: map[string]*fakeCart{}, open: map[string]string{}, accepted: map[string]int{}}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := f.verifier.Verify(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if err != nil {
		f.violation("%s %s: token: %v", r.Method, r.URL.Path, err)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/carts"), "/")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/carts":
		f.openCart(w, p.Subject)
	case r.Method == http.MethodPost && len(parts) == 3:
		f.command(w, r, p.Subject, parts[1], parts[2])
	case r.Method == http.MethodGet && len(parts) == 2:
		f.read(w, r, p.Subject, parts[1])
	default:
		f.violation("unknown route %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	}
}

func (f *fakeAPI) violation(format string, args ...any) {
	f.violations = append(f.violations, fmt.Sprintf(format, args...))
}

func (f *fakeAPI) openCart(w http.ResponseWriter, customer string) {
	if id, ok := f.open[customer]; ok {
		f.reopened++
		f.accepted["open"]++
		reply(w, http.StatusOK, f.carts[id])
		return
	}
	c := &fakeCart{id: fmt.Sprintf("cart-%d", len(f.carts)), customer: customer, version: 1, lines: map[string]int{}}
	f.carts[c.id], f.open[customer] = c, c.id
	f.accepted["open"]++
	reply(w, http.StatusCreated, c)
}

func (f *fakeAPI) command(w http.ResponseWriter, r *http.Request, customer, id, op string) {
	c, ok := f.carts[id]
	if !ok || c.customer != customer || c.closed {
		f.violation("%s on cart %s which is not the open cart of %s", op, id, customer)
		http.Error(w, "conflict", http.StatusConflict)
		return
	}
	var body struct {
		ProductID string `json:"productId"`
		Quantity  int    `json:"quantity"`
	}
	if r.ContentLength > 0 {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			f.violation("%s with Content-Type %q", op, r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			f.violation("%s body: %v", op, err)
		}
	}
	q, inCart := c.lines[body.ProductID]
	switch op {
	case "add-item":
		f.adds++
		if f.failEvery > 0 && f.adds%f.failEvery == 0 {
			f.injected++
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"code":"unavailable"}`))
			return
		}
		if body.Quantity < 1 || q+body.Quantity > 99 {
			f.violation("add %d of %s to %d", body.Quantity, body.ProductID, q)
		}
		if !inCart {
			c.order = append(c.order, body.ProductID)
		}
		c.lines[body.ProductID] += body.Quantity
	case "change-quantity":
		if !inCart || body.Quantity < 1 || body.Quantity > 99 || body.Quantity == q {
			f.violation("change %s from %d (in cart: %v) to %d", body.ProductID, q, inCart, body.Quantity)
		}
		c.lines[body.ProductID] = body.Quantity
	case "remove-item":
		if !inCart {
			f.violation("remove %s, not in the cart", body.ProductID)
		}
		delete(c.lines, body.ProductID)
		for i, p := range c.order {
			if p == body.ProductID {
				c.order = append(c.order[:i], c.order[i+1:]...)
				break
			}
		}
	case "checkout":
		if len(c.lines) == 0 {
			f.violation("checkout of an empty cart")
		}
		c.closed = true
		delete(f.open, customer)
	default:
		f.violation("unknown command %s", op)
	}
	c.version++
	f.accepted[op]++
	reply(w, http.StatusOK, c)
}

func (f *fakeAPI) read(w http.ResponseWriter, r *http.Request, customer, id string) {
	f.reads++
	c, ok := f.carts[id]
	if !ok || c.customer != customer {
		f.violation("read of cart %s, not one of %s's", id, customer)
		http.NotFound(w, r)
		return
	}
	if mv := r.URL.Query().Get("minVersion"); mv != "" {
		if n, err := strconv.Atoi(mv); err != nil || n > c.version {
			f.violation("read of %s at minVersion %s, beyond its version %d", id, mv, c.version)
		}
	}
	type line struct {
		ProductID string `json:"productId"`
		Quantity  int    `json:"quantity"`
	}
	doc := struct {
		CartID  string `json:"cartId"`
		Version int    `json:"version"`
		Status  string `json:"status"`
		Lines   []line `json:"lines"`
	}{CartID: c.id, Version: c.version, Status: "open"}
	for _, p := range c.order {
		doc.Lines = append(doc.Lines, line{p, c.lines[p]})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc) // the client's failure to read shows in its counts
}

func reply(w http.ResponseWriter, status int, c *fakeCart) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"cartId":%q,"version":%d}`, c.id, c.version)
}
