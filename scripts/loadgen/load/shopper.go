package load

import "slices"

// Shopper is one simulated customer and what it knows about its open cart.
// A shopper is driven by one worker at a time and nobody else writes to its
// cart, so the answers to its own commands keep that knowledge exact; after
// a failed command it no longer is, and the next op reopens and
// resynchronises.
type Shopper struct {
	// ID is the customer id, the subject of Token.
	ID    string
	Token string
	// CartID is the open cart; empty when the customer has none (yet, or
	// since its checkout), so that its next op opens one.
	CartID string
	// Version is the cart's version after the customer's last write.
	Version int
	// Lines maps product → quantity; order keeps the products in the order
	// they were added, so that a seeded run picks the same lines again.
	Lines map[string]int
	order []string
	// stale: a command failed, so the cart may hold changes the shopper did
	// not see; the next open resynchronises the lines from the read side.
	stale bool
}

// NewShopper returns a shopper without a cart.
func NewShopper(customer, token string) *Shopper {
	return &Shopper{ID: customer, Token: token, Lines: map[string]int{}}
}

func (s *Shopper) lineAt(i int) string { return s.order[i] }

// Applied records a command the service accepted: cartID and version are its
// answer.
func (s *Shopper) Applied(a Action, cartID string, version int) {
	s.Version = version
	switch a.Op {
	case OpOpen:
		s.CartID = cartID
	case OpAdd:
		if _, ok := s.Lines[a.ProductID]; !ok {
			s.order = append(s.order, a.ProductID)
		}
		s.Lines[a.ProductID] += a.Quantity
	case OpChange:
		s.Lines[a.ProductID] = a.Quantity
	case OpRemove:
		delete(s.Lines, a.ProductID)
		s.order = slices.DeleteFunc(s.order, func(p string) bool { return p == a.ProductID })
	case OpCheckout:
		s.reset()
	}
}

// Failed forgets the cart after a command whose outcome is unknown (a
// refusal, a timeout, a 5xx): the next op opens — which answers the
// customer's open cart, if it still has one — and the lines are reloaded.
func (s *Shopper) Failed() {
	s.reset()
	s.stale = true
}

// Stale reports whether the lines must be reloaded after the next open.
func (s *Shopper) Stale() bool { return s.stale }

// Resynced replaces the lines with the cart's as the read side has them
// (product → quantity, in the document's order).
func (s *Shopper) Resynced(products []string, quantities []int) {
	clear(s.Lines)
	s.order = s.order[:0]
	for i, p := range products {
		s.Lines[p] = quantities[i]
		s.order = append(s.order, p)
	}
	s.stale = false
}

func (s *Shopper) reset() {
	s.CartID, s.Version = "", 0
	clear(s.Lines)
	s.order = s.order[:0]
}
