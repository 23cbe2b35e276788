package load

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Op is one kind of request a simulated customer sends.
type Op int

const (
	OpOpen     Op = iota // POST /v1/carts
	OpAdd                // POST /v1/carts/{id}/add-item
	OpChange             // POST /v1/carts/{id}/change-quantity
	OpRemove             // POST /v1/carts/{id}/remove-item
	OpCheckout           // POST /v1/carts/{id}/checkout
	OpRead               // GET /v1/carts/{id}
	numOps
)

var opNames = [numOps]string{"open", "add-item", "change-quantity", "remove-item", "checkout", "read"}

func (o Op) String() string {
	if o < 0 || o >= numOps {
		return fmt.Sprintf("op(%d)", int(o))
	}
	return opNames[o]
}

// IsCommand reports whether the op goes to the command service.
func (o Op) IsCommand() bool { return o != OpRead }

// Mix is the relative weight of each op a customer with an open cart picks
// next; a customer without one always opens one first. ReadAfterWrite is the
// probability that a successful command is followed at once by a read of
// that very version (?minVersion), which measures the end-to-end lag.
type Mix struct {
	Add, Change, Remove, Checkout, Read int
	ReadAfterWrite                      float64
}

// Validate reports a mix that cannot drive a customer anywhere.
func (m Mix) Validate() error {
	var errs []error
	for _, w := range []int{m.Add, m.Change, m.Remove, m.Checkout, m.Read} {
		if w < 0 {
			errs = append(errs, fmt.Errorf("mix: negative weight in %+v", m))
			break
		}
	}
	if m.Add+m.Change+m.Remove+m.Checkout+m.Read == 0 {
		errs = append(errs, errors.New("mix: every weight is zero"))
	}
	// Change, remove and checkout need lines, which only add makes.
	if m.Add == 0 && m.Change+m.Remove+m.Checkout > 0 {
		errs = append(errs, errors.New("mix: change, remove or checkout without add"))
	}
	if m.ReadAfterWrite < 0 || m.ReadAfterWrite > 1 {
		errs = append(errs, fmt.Errorf("mix: read-after-write probability %v is not in [0, 1]", m.ReadAfterWrite))
	}
	return errors.Join(errs...)
}

// Action is an op with its arguments, ready to send.
type Action struct {
	Op        Op
	ProductID string
	Quantity  int
}

// Limits a generated command keeps to, so that every command of the mix is
// one the cart accepts: the load measures work, not refusals.
const (
	maxLineQuantity = 99  // cart.MaxQuantity
	maxLines        = 100 // cart.MaxLines
	maxAddQuantity  = 3
	maxSetQuantity  = 5
)

// Next picks what the customer of s does next: open a cart when it has none,
// otherwise an op of the mix that the cart's state allows, with its
// arguments. catalog lists the products that may be added; rng is the
// caller's (one per worker, so that runs are reproducible by seed).
func Next(s *Shopper, m Mix, catalog []string, rng *rand.Rand) Action {
	if s.CartID == "" {
		return Action{Op: OpOpen}
	}
	addable := addableProducts(s, catalog)
	hasLines := len(s.Lines) > 0
	weights := [numOps]int{
		OpAdd:      pick(len(addable) > 0, m.Add),
		OpChange:   pick(hasLines, m.Change),
		OpRemove:   pick(hasLines, m.Remove),
		OpCheckout: pick(hasLines, m.Checkout),
		OpRead:     m.Read,
	}
	op, ok := weighted(weights, rng)
	if !ok {
		// Nothing of the mix fits this cart (a mix of changes on an empty
		// cart cannot happen: Validate requires add). Keep the customer
		// moving: add when possible, otherwise close the full cart.
		op = OpCheckout
		if len(addable) > 0 {
			op = OpAdd
		}
	}
	a := Action{Op: op}
	switch op {
	case OpAdd:
		a.ProductID = addable[rng.IntN(len(addable))]
		a.Quantity = 1 + rng.IntN(min(maxAddQuantity, maxLineQuantity-s.Lines[a.ProductID]))
	case OpChange:
		a.ProductID = s.lineAt(rng.IntN(len(s.Lines)))
		// A different quantity, so that the command appends an event.
		cur := s.Lines[a.ProductID]
		a.Quantity = 1 + rng.IntN(maxSetQuantity-1)
		if a.Quantity >= cur {
			a.Quantity++
		}
	case OpRemove:
		a.ProductID = s.lineAt(rng.IntN(len(s.Lines)))
	}
	return a
}

func pick(allowed bool, weight int) int {
	if !allowed {
		return 0
	}
	return weight
}

// weighted draws an index with probability proportional to its weight; false
// when every weight is zero.
func weighted(weights [numOps]int, rng *rand.Rand) (Op, bool) {
	total := 0
	for _, w := range weights {
		total += w
	}
	if total == 0 {
		return 0, false
	}
	n := rng.IntN(total)
	for op, w := range weights {
		if n < w {
			return Op(op), true
		}
		n -= w
	}
	panic("load: weighted draw out of range")
}

// addableProducts are the catalog products whose line has room for at least
// one more unit, as long as the cart may take another line.
func addableProducts(s *Shopper, catalog []string) []string {
	out := make([]string, 0, len(catalog))
	for _, p := range catalog {
		q, inCart := s.Lines[p]
		if inCart && q < maxLineQuantity || !inCart && len(s.Lines) < maxLines {
			out = append(out, p)
		}
	}
	return out
}
