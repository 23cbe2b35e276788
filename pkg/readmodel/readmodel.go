// Package readmodel is the denormalized cart document kept in Redis, the
// cart's history list next to it, the update notice the projector publishes,
// and the names of the keys they live under. The projector writes them with
// the domain's fold; the query service serves them and folds the history for
// time travel.
package readmodel

import (
	"strconv"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// Cart is the document a client reads: everything the cart page shows, with
// totals already computed.
type Cart struct {
	CartID       string     `json:"cartId"`
	CustomerID   string     `json:"customerId"`
	Status       string     `json:"status"`
	Version      int        `json:"version"`
	Lines        []Line     `json:"lines"`
	ItemCount    int        `json:"itemCount"`
	Total        int64      `json:"total"`
	Currency     string     `json:"currency,omitempty"`
	CreatedAt    time.Time  `json:"createdAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
	CheckedOutAt *time.Time `json:"checkedOutAt,omitempty"`
}

// Line is one product in the cart document. Prices are minor units.
type Line struct {
	ProductID string `json:"productId"`
	Name      string `json:"name"`
	UnitPrice int64  `json:"unitPrice"`
	Currency  string `json:"currency"`
	Quantity  int    `json:"quantity"`
	LineTotal int64  `json:"lineTotal"`
}

// FromState denormalizes a cart state into its document.
func FromState(s cart.State) Cart {
	lines := make([]Line, len(s.Lines))
	for i, l := range s.Lines {
		lines[i] = Line(l)
	}
	return Cart{
		CartID: s.CartID, CustomerID: s.CustomerID, Status: string(s.Status), Version: s.Version,
		Lines: lines, ItemCount: s.ItemCount(), Total: s.Total(), Currency: s.Currency(),
		CreatedAt: s.OpenedAt, UpdatedAt: s.UpdatedAt, CheckedOutAt: s.CheckedOutAt,
	}
}

// State turns the document back into the state it was made from, so that the
// next event can be folded onto it.
func (c Cart) State() cart.State {
	lines := make([]cart.Line, len(c.Lines))
	for i, l := range c.Lines {
		lines[i] = cart.Line(l)
	}
	return cart.State{
		CartID: c.CartID, CustomerID: c.CustomerID, Status: cart.Status(c.Status), Version: c.Version,
		Lines: lines, OpenedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, CheckedOutAt: c.CheckedOutAt,
	}
}

// Hash fields of a cart key.
const (
	// FieldVersion holds the document's version on its own, so a version
	// guard can compare it without decoding the document.
	FieldVersion = "version"
	// FieldDoc holds the Cart as JSON.
	FieldDoc = "doc"
	// FieldOwner holds the document's CustomerID on its own, so a reader
	// can check who may see the cart without decoding the document. A cart
	// never changes owner. Documents written before it existed lack it.
	FieldOwner = "owner"
	// FieldSkipped lists the versions the document passed over without
	// applying them (skipped poison events), comma-separated; absent when
	// none. Readers of the document need not look at it.
	FieldSkipped = "skipped"
)

// Keys names the Redis keys of one generation of the read models. A rebuild
// fills a new generation and then switches readers to it at once. Names are
// made for every read and write, so by concatenation, not fmt.
//
// A cart's keys carry the hash tag {<cartId>} and a customer's keys the tag
// {<customerId>}, so in a Redis Cluster each group stays in one slot.
type Keys struct {
	Prefix     string
	Generation int
}

// Cart is a hash (FieldVersion, FieldDoc, FieldOwner) holding one cart's document.
func (k Keys) Cart(cartID string) string {
	return k.Prefix + "g" + strconv.Itoa(k.Generation) + ":cart:{" + cartID + "}"
}

// OpenCart is a string holding the id of a customer's open cart.
func (k Keys) OpenCart(customerID string) string {
	return k.Prefix + "g" + strconv.Itoa(k.Generation) + ":customer:{" + customerID + "}:open-cart"
}

// History is a list of JSON HistoryEntry values, one per event of the
// cart in version order. It shares the cart's hash tag, so the projector
// writes it and the document in one script in a Redis Cluster too.
func (k Keys) History(cartID string) string {
	return k.Cart(cartID) + ":history"
}

// Updates is the Pub/Sub channel on which the projector announces each
// written document version (an Update). One channel per generation, so
// that a rebuild filling the next generation wakes nobody.
func (k Keys) Updates() string {
	return k.Prefix + "g" + strconv.Itoa(k.Generation) + ":cart-updates"
}

// CurrentGeneration is the key holding the generation readers use; absent
// means generation 1.
func CurrentGeneration(prefix string) string {
	return prefix + "generation"
}
