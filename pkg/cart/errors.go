package cart

import "errors"

// ErrorKind classifies why a command was refused, so that adapters can map it
// to their own vocabulary (an HTTP status, a log level) without reading text.
type ErrorKind int

const (
	// KindInvalid: the command itself is malformed or out of range.
	KindInvalid ErrorKind = iota + 1
	// KindNotFound: the cart does not exist.
	KindNotFound
	// KindConflict: the command is valid but the cart's state forbids it.
	KindConflict
	// KindForbidden: the caller may not issue this command.
	KindForbidden
)

// Error is a refused command: a stable machine-readable Code and a message for
// the person who sent it.
type Error struct {
	Kind    ErrorKind
	Code    string
	Message string
}

func (e *Error) Error() string { return "cart: " + e.Code + ": " + e.Message }

// Is makes errors.Is match on the stable code, so callers can compare against
// the sentinel values below even when the message was specialised.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

func refuse(kind ErrorKind, code, msg string) *Error {
	return &Error{Kind: kind, Code: code, Message: msg}
}

// The rules of the cart, by stable code.
var (
	ErrNotFound           = refuse(KindNotFound, "cart-not-found", "cart not found")
	ErrAlreadyOpened      = refuse(KindConflict, "cart-already-opened", "cart is already opened")
	ErrCheckedOut         = refuse(KindConflict, "cart-checked-out", "cart is checked out")
	ErrEmpty              = refuse(KindConflict, "cart-empty", "cart is empty")
	ErrInvalidQuantity    = refuse(KindInvalid, "invalid-quantity", "quantity must be between 1 and 99")
	ErrInvalidProduct     = refuse(KindInvalid, "invalid-product-id", "productId must be 1-64 characters without control characters")
	ErrUnknownProduct     = refuse(KindInvalid, "unknown-product", "product does not exist")
	ErrProductUnavailable = refuse(KindConflict, "product-unavailable", "product is not available")
	ErrCurrencyMismatch   = refuse(KindConflict, "currency-mismatch", "product is priced in another currency than the cart")
	ErrQuantityLimit      = refuse(KindConflict, "quantity-limit", "a line holds at most 99 units")
	ErrLineLimit          = refuse(KindConflict, "line-limit", "a cart holds at most 100 lines")
	ErrItemNotInCart      = refuse(KindConflict, "item-not-in-cart", "item is not in the cart")
	ErrInvalidReason      = refuse(KindInvalid, "invalid-reason", "reason must be 'customer' or 'product-unavailable'")
	ErrReasonNotPermitted = refuse(KindForbidden, "reason-not-permitted", "only system callers may remove an item as product-unavailable")
	ErrInvalidCustomer    = refuse(KindInvalid, "invalid-customer", "customer id is required")
)
