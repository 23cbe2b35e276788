package postgres

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// DefaultStateCacheSize is how many carts' states an instance keeps by
// default.
const DefaultStateCacheSize = 4096

// states keeps the states of the carts this instance last loaded or wrote,
// so that a command usually decides without reading the cart back. An entry
// is trusted only as far as the compare-and-set at commit allows: when
// another instance (or a writer this one did not see) moved the cart on, the
// append fails, the entry is dropped and the command is decided again on a
// fresh load. A State is a value whose lines Evolve copies, so entries are
// never shared mutably.
type states struct {
	mu    sync.Mutex
	max   int
	order *list.List // of cart.State, most recently used first
	byID  map[string]*list.Element
}

func newStates(max int) *states {
	return &states{max: max, order: list.New(), byID: make(map[string]*list.Element)}
}

func (c *states) get(id string) (cart.State, bool) {
	if c.max <= 0 {
		return cart.State{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok {
		return cart.State{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(cart.State), true
}

// put keeps s unless a newer state of the cart is kept already.
func (c *states) put(s cart.State) {
	if c.max <= 0 || s.CartID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[s.CartID]; ok {
		if e.Value.(cart.State).Version <= s.Version {
			e.Value = s
		}
		c.order.MoveToFront(e)
		return
	}
	c.byID[s.CartID] = c.order.PushFront(s)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byID, last.Value.(cart.State).CartID)
	}
}

func (c *states) drop(id string) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[id]; ok {
		c.order.Remove(e)
		delete(c.byID, id)
	}
}

// catalog keeps the available products this instance has looked up. A
// product a command adds is checked against its catalog row in the same
// transaction as the append (cart_require_product), so a price or name
// changed since it was cached fails the command, which drops the entry and
// decides again. What the cache does not hold — an unknown or unavailable
// product — is always read from the table, so a product made available is
// seen by the next command.
type catalog struct {
	mu   sync.RWMutex
	byID map[string]cart.Product
}

func newCatalog() *catalog { return &catalog{byID: make(map[string]cart.Product)} }

func (c *catalog) get(id string) (cart.Product, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.byID[id]
	return p, ok
}

func (c *catalog) put(p cart.Product) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.Available {
		c.byID[p.ID] = p
	} else {
		delete(c.byID, p.ID)
	}
}

func (c *catalog) drop(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		delete(c.byID, id)
	}
}

// Product returns a catalog entry, or nil (and no error) when the catalog
// does not know id. Available products come from the instance's cache.
func (r *Repository) Product(ctx context.Context, id string) (*cart.Product, error) {
	if p, ok := r.catalog.get(id); ok {
		return &p, nil
	}
	p := cart.Product{ID: id}
	err := r.pool.QueryRow(ctx,
		`SELECT name, unit_price, currency, available FROM products WHERE product_id = $1`, id,
	).Scan(&p.Name, &p.UnitPrice, &p.Currency, &p.Available)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: product %q: %w", id, err)
	}
	r.catalog.put(p)
	return &p, nil
}
