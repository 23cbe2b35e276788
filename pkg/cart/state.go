package cart

import (
	"slices"
	"time"
)

// Status is where a cart is in its life.
type Status string

const (
	// StatusNone is a cart that has no events yet.
	StatusNone       Status = ""
	StatusOpen       Status = "open"
	StatusCheckedOut Status = "checked-out"
)

// Line is one product in a cart.
type Line struct {
	ProductID string `json:"productId"`
	Name      string `json:"name"`
	UnitPrice int64  `json:"unitPrice"`
	Currency  string `json:"currency"`
	Quantity  int    `json:"quantity"`
	LineTotal int64  `json:"lineTotal"`
}

// State is a cart as its events tell it. It is a value: Evolve never changes
// the State it is given, so states can be kept and compared.
type State struct {
	CartID       string     `json:"cartId"`
	CustomerID   string     `json:"customerId"`
	Status       Status     `json:"status"`
	Version      int        `json:"version"`
	Lines        []Line     `json:"lines"`
	OpenedAt     time.Time  `json:"openedAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
	CheckedOutAt *time.Time `json:"checkedOutAt,omitempty"`
}

// Recorded is an event as it stands in a cart's stream: its version and the
// time it happened, which the fold needs and the event itself does not carry.
type Recorded struct {
	CartID     string
	Version    int
	OccurredAt time.Time
	Event      Event
}

// Evolve applies one recorded event to a state and returns the new state.
func Evolve(s State, r Recorded) State {
	s.Lines = slices.Clone(s.Lines)
	switch e := r.Event.(type) {
	case Opened:
		s.CartID = r.CartID
		s.CustomerID = e.CustomerID
		s.Status = StatusOpen
		s.OpenedAt = r.OccurredAt
	case ItemAdded:
		if i := s.lineIndex(e.ProductID); i >= 0 {
			l := &s.Lines[i]
			l.Quantity += e.Quantity
			// The line shows the name and price of the latest addition: the
			// price the customer saw last is the one they expect to pay.
			l.Name, l.UnitPrice, l.Currency = e.Name, e.UnitPrice, e.Currency
			l.LineTotal = l.UnitPrice * int64(l.Quantity)
		} else {
			s.Lines = append(s.Lines, Line{
				ProductID: e.ProductID, Name: e.Name, UnitPrice: e.UnitPrice, Currency: e.Currency,
				Quantity: e.Quantity, LineTotal: e.UnitPrice * int64(e.Quantity),
			})
		}
	case ItemRemoved:
		if i := s.lineIndex(e.ProductID); i >= 0 {
			s.Lines = slices.Delete(s.Lines, i, i+1)
		}
	case QuantityChanged:
		if i := s.lineIndex(e.ProductID); i >= 0 {
			l := &s.Lines[i]
			l.Quantity = e.NewQuantity
			l.LineTotal = l.UnitPrice * int64(l.Quantity)
		}
	case CheckedOut:
		s.Status = StatusCheckedOut
		at := r.OccurredAt
		s.CheckedOutAt = &at
	}
	if s.Lines == nil {
		s.Lines = []Line{}
	}
	s.Version = r.Version
	s.UpdatedAt = r.OccurredAt
	return s
}

// Fold applies recorded events in order, starting from s.
func Fold(s State, events ...Recorded) State {
	for _, r := range events {
		s = Evolve(s, r)
	}
	return s
}

// ItemCount is the number of units in the cart.
func (s State) ItemCount() int {
	n := 0
	for _, l := range s.Lines {
		n += l.Quantity
	}
	return n
}

// Total is the sum of the line totals, in minor units of Currency.
func (s State) Total() int64 {
	var t int64
	for _, l := range s.Lines {
		t += l.LineTotal
	}
	return t
}

// Currency is the currency of the cart's lines, or "" for an empty cart.
func (s State) Currency() string {
	if len(s.Lines) == 0 {
		return ""
	}
	return s.Lines[0].Currency
}

// Line returns the line of a product, if the cart holds it.
func (s State) Line(productID string) (Line, bool) {
	if i := s.lineIndex(productID); i >= 0 {
		return s.Lines[i], true
	}
	return Line{}, false
}

func (s State) lineIndex(productID string) int {
	return slices.IndexFunc(s.Lines, func(l Line) bool { return l.ProductID == productID })
}
