package analytics

import (
	"maps"
	"slices"
	"strconv"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// Name is the projection's name: its metrics' label and its keys' prefix
// (readmodel.AnalyticsKeys); Counted is what its counters count.
const (
	Name    = "analytics"
	Counted = "product"
)

// Rules are the projection's rules as the engine runs them.
type Rules struct{}

var _ engine.Rules[CartState] = Rules{}

// Fold implements engine.Rules with Fold.
func (Rules) Fold(s CartState, events []envelope.Envelope) (CartState, engine.Delta, []engine.Undecodable, error) {
	next, d, res, err := Fold(s, events)
	if err != nil {
		return s, nil, nil, err
	}
	out := make(engine.Delta, len(d.Products))
	for id, p := range d.Products {
		out[id] = &engine.Counters{Label: p.Name, LabelAt: p.NameAt, Add: productFields(p)}
	}
	var passed []engine.Undecodable
	for _, u := range res.Undecodable {
		passed = append(passed, engine.Undecodable{Event: u.Event, Err: u.Err})
	}
	return next, out, passed, nil
}

// Encode implements engine.Rules.
func (Rules) Encode(s CartState) (string, error) { return encodeState(s) }

// Decode implements engine.Rules.
func (Rules) Decode(version int, raw string) (CartState, error) { return decodeState(version, raw) }

// productFields are a product delta's hash increments by field; zero
// increments are left out.
func productFields(p *ProductDelta) map[string]int64 {
	out := make(map[string]int64, 16)
	for _, c := range []struct {
		field string
		n     int64
	}{
		{readmodel.FieldAdded, p.Added}, {readmodel.FieldAddedToCarts, p.AddedToCarts},
		{readmodel.FieldRemovedByCustomer, p.RemovedByCustomer}, {readmodel.FieldRemovedBySystem, p.RemovedBySystem},
		{readmodel.FieldCheckedOut, p.CheckedOut},
		{readmodel.FieldQuantityRaised, p.QuantityRaised}, {readmodel.FieldQuantityLowered, p.QuantityLowered},
	} {
		if c.n != 0 {
			out[c.field] = c.n
		}
	}
	for _, h := range []struct {
		prefix  string
		buckets map[int]int64
	}{{readmodel.FieldDwellToCheckout, p.DwellToCheckout}, {readmodel.FieldDwellToRemoval, p.DwellToRemoval}} {
		for _, b := range slices.Sorted(maps.Keys(h.buckets)) {
			if n := h.buckets[b]; n != 0 {
				out[h.prefix+strconv.Itoa(b)] = n
			}
		}
	}
	return out
}
