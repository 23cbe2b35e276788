package cart

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a cart.
const (
	MaxQuantity = 99
	MaxLines    = 100
)

// Actor is who issues a command: a customer, or a system caller (another
// service, an operator) that may act on any cart.
type Actor struct {
	ID     string
	System bool
}

// Command is a request to change a cart.
type Command interface {
	commandName() string
}

// Open opens a cart for the acting customer.
type Open struct{}

// Product is a catalog entry as the command sees it. A nil *Product means the
// catalog does not know the product.
type Product struct {
	ID        string
	Name      string
	UnitPrice int64
	Currency  string
	Available bool
}

// AddItem adds Quantity units of a product; Product is the catalog's entry.
type AddItem struct {
	ProductID string
	Quantity  int
	Product   *Product
}

// RemoveItem takes a product's line out of the cart. Reason defaults to
// ReasonCustomer.
type RemoveItem struct {
	ProductID string
	Reason    string
}

// ChangeQuantity sets the quantity of a line.
type ChangeQuantity struct {
	ProductID string
	Quantity  int
}

// Checkout closes the cart.
type Checkout struct{}

func (Open) commandName() string           { return "open" }
func (AddItem) commandName() string        { return "add-item" }
func (RemoveItem) commandName() string     { return "remove-item" }
func (ChangeQuantity) commandName() string { return "change-quantity" }
func (Checkout) commandName() string       { return "checkout" }

// Decide returns the events a command produces on a cart, or the rule it
// breaks. No events and no error means the command changes nothing (setting a
// quantity to the value it already has).
func Decide(s State, by Actor, c Command) ([]Event, error) {
	if by.ID == "" {
		return nil, ErrInvalidCustomer
	}
	if err := validate(c); err != nil {
		return nil, err
	}
	if _, ok := c.(Open); ok {
		if s.Status != StatusNone {
			return nil, ErrAlreadyOpened
		}
		return []Event{Opened{CustomerID: by.ID}}, nil
	}
	if !s.VisibleTo(by) {
		return nil, ErrNotFound
	}
	if s.Status == StatusCheckedOut {
		return nil, ErrCheckedOut
	}
	switch c := c.(type) {
	case AddItem:
		return decideAdd(s, c)
	case RemoveItem:
		return decideRemove(s, by, c)
	case ChangeQuantity:
		l, ok := s.Line(c.ProductID)
		if !ok {
			return nil, ErrItemNotInCart
		}
		if l.Quantity == c.Quantity {
			return nil, nil
		}
		return []Event{QuantityChanged{ProductID: c.ProductID, OldQuantity: l.Quantity, NewQuantity: c.Quantity}}, nil
	case Checkout:
		if len(s.Lines) == 0 {
			return nil, ErrEmpty
		}
		return []Event{CheckedOut{Lines: s.Lines, ItemCount: s.ItemCount(), Total: s.Total(), Currency: s.Currency()}}, nil
	}
	panic("cart: unhandled command " + c.commandName())
}

// VisibleTo reports whether the actor may see the cart at all: it exists,
// and it is the actor's own or the actor is a system caller. Someone else's
// cart does not exist, as far as a customer can tell, so every refusal here
// is ErrNotFound — whoever asks, and whatever else the request says.
func (s State) VisibleTo(by Actor) bool {
	return s.Status != StatusNone && (s.CustomerID == by.ID || by.System)
}

// MaxProductIDLen bounds a product id.
const MaxProductIDLen = 64

// ValidProductID: 1..MaxProductIDLen characters of valid UTF-8 without
// control characters — what a catalog id can be.
func ValidProductID(id string) bool {
	return id != "" && len(id) <= MaxProductIDLen && utf8.ValidString(id) && !strings.ContainsFunc(id, unicode.IsControl)
}

// validate checks what a command says on its own, before any state is read.
func validate(c Command) error {
	switch c := c.(type) {
	case AddItem:
		if !ValidProductID(c.ProductID) {
			return ErrInvalidProduct
		}
		if c.Quantity < 1 || c.Quantity > MaxQuantity {
			return ErrInvalidQuantity
		}
		if c.Product == nil {
			return ErrUnknownProduct
		}
	case RemoveItem:
		if !ValidProductID(c.ProductID) {
			return ErrInvalidProduct
		}
		if c.Reason != "" && c.Reason != ReasonCustomer && c.Reason != ReasonProductUnavailable {
			return ErrInvalidReason
		}
	case ChangeQuantity:
		if !ValidProductID(c.ProductID) {
			return ErrInvalidProduct
		}
		if c.Quantity < 1 || c.Quantity > MaxQuantity {
			return ErrInvalidQuantity
		}
	}
	return nil
}

func decideAdd(s State, c AddItem) ([]Event, error) {
	p := c.Product
	if !p.Available {
		return nil, ErrProductUnavailable
	}
	if cur := s.Currency(); cur != "" && cur != p.Currency {
		return nil, ErrCurrencyMismatch
	}
	if l, ok := s.Line(c.ProductID); ok {
		if l.Quantity+c.Quantity > MaxQuantity {
			return nil, ErrQuantityLimit
		}
	} else if len(s.Lines) >= MaxLines {
		return nil, ErrLineLimit
	}
	return []Event{ItemAdded{ProductID: c.ProductID, Name: p.Name, UnitPrice: p.UnitPrice, Currency: p.Currency, Quantity: c.Quantity}}, nil
}

func decideRemove(s State, by Actor, c RemoveItem) ([]Event, error) {
	reason := c.Reason
	if reason == "" {
		reason = ReasonCustomer
	}
	if reason == ReasonProductUnavailable && !by.System {
		return nil, ErrReasonNotPermitted
	}
	l, ok := s.Line(c.ProductID)
	if !ok {
		return nil, ErrItemNotInCart
	}
	return []Event{ItemRemoved{ProductID: c.ProductID, Quantity: l.Quantity, Reason: reason}}, nil
}
