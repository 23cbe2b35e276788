package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/command/internal/httpapi"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

// memCarts is an in-memory httpapi.Carts for the fuzz targets, which test
// the HTTP decoding layer and not the database (the repository has its
// own tests against PostgreSQL). It keeps the repository's contract: ids
// must be canonical UUIDs, decide runs on the current state, refused
// commands write nothing, events are encoded as they would be stored, text
// PostgreSQL cannot store fails as it would there (pgText), and keys
// replay or are refused as reused. It records every call.
type memCarts struct {
	mu       sync.Mutex
	carts    map[string]cart.State // by canonical id
	open     map[string]string     // customer → open cart id
	keys     map[[2]string]memKey  // (caller, key) → stored response
	products map[string]cart.Product
	calls    []string
	events   int // appended since reset
	now      time.Time
}

type memKey struct {
	method, path string
	hash         []byte
	resp         idempotency.Response
}

var _ httpapi.Carts = (*memCarts)(nil)

// Carts every fuzz iteration starts from.
const (
	aliceCart      = "0195a3c0-0000-7000-8000-0000000000a1" // open, 2 lines, v3
	aliceOldCart   = "0195a3c0-0000-7000-8000-0000000000a0" // checked out, v3
	bobCart        = "0195a3c0-0000-7000-8000-0000000000b1" // open, empty, v1
	unknownCart    = "0195a3c0-0000-7000-8000-0000000000ff"
	systemCustomer = "catalog-service"
)

func newMemCarts() *memCarts {
	m := &memCarts{products: map[string]cart.Product{
		"123": {ID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Available: true},
		"456": {ID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Available: true},
		"789": {ID: "789", Name: "Milk frother", UnitPrice: 3499, Currency: "EUR", Available: true},
		"999": {ID: "999", Name: "Discontinued", UnitPrice: 100, Currency: "EUR", Available: false},
		"usd": {ID: "usd", Name: "Imported", UnitPrice: 999, Currency: "USD", Available: true},
	}}
	m.reset()
	return m
}

// reset brings back the starting carts and forgets keys and calls, so that
// each fuzz input is judged on its own.
func (m *memCarts) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	rec := func(id string, v int, e cart.Event) cart.Recorded {
		return cart.Recorded{CartID: id, Version: v, OccurredAt: m.now, Event: e}
	}
	espresso := cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 2}
	mug := cart.ItemAdded{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 98}
	old := cart.Fold(cart.State{}, rec(aliceOldCart, 1, cart.Opened{CustomerID: "alice"}), rec(aliceOldCart, 2, espresso))
	old = cart.Evolve(old, rec(aliceOldCart, 3, cart.CheckedOut{Lines: old.Lines, ItemCount: old.ItemCount(), Total: old.Total(), Currency: "EUR"}))
	m.carts = map[string]cart.State{
		aliceCart:    cart.Fold(cart.State{}, rec(aliceCart, 1, cart.Opened{CustomerID: "alice"}), rec(aliceCart, 2, espresso), rec(aliceCart, 3, mug)),
		aliceOldCart: old,
		bobCart:      cart.Fold(cart.State{}, rec(bobCart, 1, cart.Opened{CustomerID: "bob"})),
	}
	m.open = map[string]string{"alice": aliceCart, "bob": bobCart}
	m.keys = map[[2]string]memKey{}
	m.calls, m.events = nil, 0
}

func (m *memCarts) record(format string, args ...any) {
	m.calls = append(m.calls, fmt.Sprintf(format, args...))
}

// pgText fails like PostgreSQL on text it cannot store: a NUL byte or
// invalid UTF-8 in a text parameter, a \u0000 escape in jsonb.
func pgText(what, s string) error {
	if strings.Contains(s, "\x00") || !utf8.ValidString(s) {
		return fmt.Errorf("mem: %s: ERROR: invalid byte sequence for encoding \"UTF8\" (SQLSTATE 22021)", what)
	}
	if strings.Contains(s, `\u0000`) {
		return fmt.Errorf("mem: %s: ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)", what)
	}
	return nil
}

// appendEvents encodes evs as the repository stores them and folds them.
func (m *memCarts) appendEvents(s cart.State, evs []cart.Event, md envelope.Metadata) (cart.State, error) {
	mdJSON, err := json.Marshal(md)
	if err != nil {
		return cart.State{}, fmt.Errorf("mem: append cart %s: metadata: %w", s.CartID, err)
	}
	if err := pgText("metadata", string(mdJSON)); err != nil {
		return cart.State{}, err
	}
	for _, ev := range evs {
		v := s.Version + 1
		env, err := envelope.New(uuid.NewString(), s.CartID, v, ev, md, m.now)
		if err != nil {
			return cart.State{}, fmt.Errorf("mem: append cart %s: %w", s.CartID, err)
		}
		if err := pgText("event data", string(env.Data)); err != nil {
			return cart.State{}, err
		}
		r, err := env.Recorded()
		if err != nil {
			return cart.State{}, fmt.Errorf("mem: append cart %s: stored event does not read back: %w", s.CartID, err)
		}
		s = cart.Evolve(s, r)
		m.events++
	}
	m.carts[s.CartID] = s
	if s.Status == cart.StatusCheckedOut && m.open[s.CustomerID] == s.CartID {
		delete(m.open, s.CustomerID)
	}
	return s, nil
}

// replay answers a key seen before: its response, or 422 for another request.
func (m *memKey) replay(req *idempotency.Request) (idempotency.Response, error) {
	if m.method != req.Method || m.path != req.Path || !bytes.Equal(m.hash, req.Hash) {
		return idempotency.Response{}, &idempotency.KeyReusedError{Method: m.method, Path: m.path,
			OtherBody: m.method == req.Method && m.path == req.Path}
	}
	r := m.resp
	r.Replayed = true
	return r, nil
}

func (m *memCarts) Open(ctx context.Context, by cart.Actor, md envelope.Metadata) (string, int, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("Open(%q)", by.ID)
	return m.openLocked(by, md)
}

func (m *memCarts) openLocked(by cart.Actor, md envelope.Metadata) (string, int, bool, error) {
	evs, err := cart.Decide(cart.State{}, by, cart.Open{})
	if err != nil {
		return "", 0, false, err
	}
	if id, ok := m.open[by.ID]; ok {
		return id, m.carts[id].Version, false, nil
	}
	id := uuid.Must(uuid.NewV7()).String()
	if _, err := m.appendEvents(cart.State{CartID: id}, evs, md); err != nil {
		return "", 0, false, err
	}
	m.open[by.ID] = id
	return id, len(evs), true, nil
}

func (m *memCarts) OpenIdempotent(ctx context.Context, req idempotency.Request, by cart.Actor, md envelope.Metadata) (idempotency.Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("OpenIdempotent(%q, %q)", by.ID, req.Key)
	k := [2]string{req.Caller, req.Key}
	if stored, ok := m.keys[k]; ok {
		return stored.replay(&req)
	}
	id, v, created, err := m.openLocked(by, md)
	if err != nil {
		return idempotency.Response{}, err
	}
	return m.store(k, &req, id, v, created)
}

func (m *memCarts) store(k [2]string, req *idempotency.Request, cartID string, version int, created bool) (idempotency.Response, error) {
	resp, err := idempotency.Succeeded(cartID, version, created)
	if err != nil {
		return idempotency.Response{}, fmt.Errorf("mem: %w", err)
	}
	m.keys[k] = memKey{method: req.Method, path: req.Path, hash: req.Hash, resp: resp}
	return resp, nil
}

func (m *memCarts) Update(ctx context.Context, cartID string, by cart.Actor, md envelope.Metadata,
	decide func(cart.State) ([]cart.Event, error)) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("Update(%q, %q)", cartID, by.ID)
	s, err := m.updateLocked(cartID, md, decide)
	return s.Version, err
}

func (m *memCarts) updateLocked(cartID string, md envelope.Metadata, decide func(cart.State) ([]cart.Event, error)) (cart.State, error) {
	id, ok := cart.CanonicalID(cartID)
	if !ok {
		return cart.State{}, cart.ErrNotFound
	}
	s, ok := m.carts[id]
	if !ok {
		return cart.State{}, cart.ErrNotFound
	}
	// decide may look products up, as the handlers' decisions do.
	m.mu.Unlock()
	evs, err := decide(s)
	m.mu.Lock()
	if err != nil {
		return cart.State{}, err
	}
	return m.appendEvents(s, evs, md)
}

func (m *memCarts) UpdateIdempotent(ctx context.Context, req idempotency.Request, cartID string, by cart.Actor,
	md envelope.Metadata, decide func(cart.State) ([]cart.Event, error)) (idempotency.Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("UpdateIdempotent(%q, %q, %q)", cartID, by.ID, req.Key)
	// The repository loads the cart, and refuses one the caller may not
	// see, before it reads the key.
	if id, ok := cart.CanonicalID(cartID); !ok || !m.carts[id].VisibleTo(by) {
		return idempotency.Response{}, cart.ErrNotFound
	}
	k := [2]string{req.Caller, req.Key}
	if stored, ok := m.keys[k]; ok {
		return stored.replay(&req)
	}
	s, err := m.updateLocked(cartID, md, decide)
	if err != nil {
		return idempotency.Response{}, err
	}
	return m.store(k, &req, s.CartID, s.Version, false)
}

func (m *memCarts) Product(ctx context.Context, id string) (*cart.Product, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("Product(%q)", id)
	if err := pgText("product id", id); err != nil {
		return nil, err
	}
	p, ok := m.products[id]
	if !ok {
		return nil, nil
	}
	return &p, nil
}

// changed reports the calls made and the events appended since reset.
func (m *memCarts) changed() (calls []string, events int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...), m.events
}
