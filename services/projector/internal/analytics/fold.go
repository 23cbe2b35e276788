package analytics

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// CartState is what the projection keeps of one cart: how far it has
// folded the cart's events, and what the rules need to remember.
type CartState struct {
	// Version is the last version folded (0: none).
	Version int
	// CheckedOut is set once the cart checked out; it takes no more events
	// (cart.Decide refuses them), so the rest is forgotten.
	CheckedOut bool
	// Lines are the cart's open lines: product → when the line's life
	// began, in Unix milliseconds.
	Lines map[string]int64
	// Added are the products ever added to the cart, sorted.
	Added []string
}

// Clone returns a copy that shares nothing with s.
func (s CartState) Clone() CartState {
	s.Lines = maps.Clone(s.Lines)
	s.Added = slices.Clone(s.Added)
	return s
}

// ProductDelta is what events did to one product's counters.
type ProductDelta struct {
	Added, AddedToCarts                int64
	RemovedByCustomer, RemovedBySystem int64
	CheckedOut                         int64
	QuantityRaised, QuantityLowered    int64
	// DwellToCheckout and DwellToRemoval count line lives by histogram
	// bucket (readmodel.DwellBucket).
	DwellToCheckout, DwellToRemoval map[int]int64
	// Name is the product's name in the latest item-added event of the
	// delta, NameAt that event's sort key (nameKey); "" when none.
	Name, NameAt string
}

// Delta is what folding events changed, per product id.
type Delta struct {
	Products map[string]*ProductDelta
}

func (d *Delta) product(id string) *ProductDelta {
	if d.Products == nil {
		d.Products = map[string]*ProductDelta{}
	}
	p, ok := d.Products[id]
	if !ok {
		p = &ProductDelta{}
		d.Products[id] = p
	}
	return p
}

// Merge adds o to d.
func (d *Delta) Merge(o Delta) {
	for id, op := range o.Products {
		p := d.product(id)
		p.Added += op.Added
		p.AddedToCarts += op.AddedToCarts
		p.RemovedByCustomer += op.RemovedByCustomer
		p.RemovedBySystem += op.RemovedBySystem
		p.CheckedOut += op.CheckedOut
		p.QuantityRaised += op.QuantityRaised
		p.QuantityLowered += op.QuantityLowered
		p.DwellToCheckout = mergeBuckets(p.DwellToCheckout, op.DwellToCheckout)
		p.DwellToRemoval = mergeBuckets(p.DwellToRemoval, op.DwellToRemoval)
		if op.NameAt > p.NameAt {
			p.Name, p.NameAt = op.Name, op.NameAt
		}
	}
}

func mergeBuckets(into, from map[int]int64) map[int]int64 {
	if len(from) == 0 {
		return into
	}
	if into == nil {
		into = make(map[int]int64, len(from))
	}
	for b, n := range from {
		into[b] += n
	}
	return into
}

// Result is what Fold did besides the new state and delta.
type Result struct {
	// Folded is how many events were folded (duplicates excluded).
	Folded int
	// Undecodable are the folded events that could not be decoded (an
	// unknown schema version, say): their versions count, their effects
	// do not.
	Undecodable []Undecodable
}

// Undecodable is an event folded without effect, and why.
type Undecodable struct {
	Event envelope.Envelope
	Err   error
}

// ErrGap is returned by Fold for an event that is not the cart's next.
var ErrGap = errors.New("analytics: version gap")

// Fold folds a cart's events onto its state and returns the new state and
// what the events did to the products. It is pure, and the rules of the
// projection are all here: the live consumer, the repair of gaps and the
// build from history all fold with it, so they agree.
//
// Events at or below s.Version are duplicates and are passed over; the
// others must follow on without a gap (ErrGap). s is not changed.
func Fold(s CartState, events []envelope.Envelope) (CartState, Delta, Result, error) {
	s = s.Clone()
	var (
		d   Delta
		res Result
	)
	for _, e := range events {
		if e.Version <= s.Version {
			continue
		}
		if e.Version != s.Version+1 {
			return CartState{}, Delta{}, Result{}, fmt.Errorf("%w: cart %s at version %d, next event is version %d", ErrGap, e.StreamID, s.Version, e.Version)
		}
		s.Version = e.Version
		res.Folded++
		if s.CheckedOut {
			continue
		}
		r, err := e.Recorded()
		if err != nil {
			res.Undecodable = append(res.Undecodable, Undecodable{Event: e, Err: err})
			continue
		}
		step(&s, &d, r)
	}
	return s, d, res, nil
}

// step applies one decoded event's rules.
func step(s *CartState, d *Delta, r cart.Recorded) {
	at := r.OccurredAt.UnixMilli()
	switch e := r.Event.(type) {
	case cart.ItemAdded:
		p := d.product(e.ProductID)
		p.Added++
		if key := nameKey(r); key > p.NameAt {
			p.Name, p.NameAt = e.Name, key
		}
		if _, open := s.Lines[e.ProductID]; open {
			// More of what the cart holds: the line lives on.
			p.QuantityRaised++
		} else {
			if s.Lines == nil {
				s.Lines = map[string]int64{}
			}
			s.Lines[e.ProductID] = at
		}
		if i, found := slices.BinarySearch(s.Added, e.ProductID); !found {
			s.Added = slices.Insert(s.Added, i, e.ProductID)
			p.AddedToCarts++
		}
	case cart.ItemRemoved:
		p := d.product(e.ProductID)
		if e.Reason == cart.ReasonProductUnavailable {
			p.RemovedBySystem++
		} else {
			p.RemovedByCustomer++
		}
		if start, open := s.Lines[e.ProductID]; open {
			p.DwellToRemoval = addDwell(p.DwellToRemoval, at-start)
			delete(s.Lines, e.ProductID)
		}
	case cart.QuantityChanged:
		switch p := d.product(e.ProductID); {
		case e.NewQuantity > e.OldQuantity:
			p.QuantityRaised++
		case e.NewQuantity < e.OldQuantity:
			p.QuantityLowered++
		}
	case cart.CheckedOut:
		// The lines bought are the cart's open lines, which the event's
		// lines repeat: the projection's own view keeps checkedOut at most
		// addedToCarts even when an earlier event could not be decoded.
		for id, start := range s.Lines {
			p := d.product(id)
			p.CheckedOut++
			p.DwellToCheckout = addDwell(p.DwellToCheckout, at-start)
		}
		*s = CartState{Version: s.Version, CheckedOut: true}
	}
}

func addDwell(h map[int]int64, ms int64) map[int]int64 {
	if h == nil {
		h = map[int]int64{}
	}
	h[readmodel.DwellBucket(time.Duration(max(ms, 0))*time.Millisecond)]++
	return h
}

// nameKey orders item-added events: by time, then cart and version, so
// that "the latest name" is the same whatever order carts are folded in.
func nameKey(r cart.Recorded) string {
	micros := max(r.OccurredAt.UnixMicro(), 0)
	return fmt.Sprintf("%017d|%s|%010d", micros, r.CartID, r.Version)
}

// storedState is a CartState as stored, beside its version.
type storedState struct {
	CheckedOut bool             `json:"c,omitempty"`
	Lines      map[string]int64 `json:"l,omitempty"`
	Added      []string         `json:"a,omitempty"`
}

// encodeState is the state as stored (the version is stored beside it). A
// checked-out cart keeps nothing but that.
func encodeState(s CartState) (string, error) {
	st := storedState{CheckedOut: s.CheckedOut, Lines: s.Lines, Added: s.Added}
	if s.CheckedOut {
		st = storedState{CheckedOut: true}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("analytics: encode cart state: %w", err)
	}
	return string(b), nil
}

// decodeState reads a state stored by encodeState at version ("" with
// version 0: a cart the generation has not seen).
func decodeState(version int, raw string) (CartState, error) {
	s := CartState{Version: version}
	if raw == "" && version == 0 {
		return s, nil
	}
	var st storedState
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return CartState{}, fmt.Errorf("analytics: cart state %q: %w", raw, err)
	}
	if !slices.IsSorted(st.Added) {
		return CartState{}, fmt.Errorf("analytics: cart state %q: products added are not sorted", raw)
	}
	s.CheckedOut, s.Lines, s.Added = st.CheckedOut, st.Lines, st.Added
	return s, nil
}
