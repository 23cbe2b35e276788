package cart

// Event is something that happened to a cart. Event names are past tense.
type Event interface {
	// EventType is the stable name of the event, e.g. "cart.item-added".
	EventType() string
}

// Event type names, as stored and published.
const (
	TypeOpened          = "cart.opened"
	TypeItemAdded       = "cart.item-added"
	TypeItemRemoved     = "cart.item-removed"
	TypeQuantityChanged = "cart.item-quantity-changed"
	TypeCheckedOut      = "cart.checked-out"
)

// Reasons an item leaves a cart.
const (
	ReasonCustomer           = "customer"
	ReasonProductUnavailable = "product-unavailable"
)

// Opened starts a cart for one customer.
type Opened struct {
	CustomerID string `json:"customerId"`
}

// ItemAdded adds Quantity units of a product. Name and UnitPrice are the
// catalog's at that moment, so the event alone says what the customer saw.
// Its JSON is schema version 2 (upcast.go), where the price is a Money.
type ItemAdded struct {
	ProductID string
	Name      string
	UnitPrice int64
	Currency  string
	Quantity  int
}

// ItemRemoved takes a whole line out of the cart; Reason says who or what
// removed it, Quantity how many units left with it.
type ItemRemoved struct {
	ProductID string `json:"productId"`
	Quantity  int    `json:"quantity"`
	Reason    string `json:"reason"`
}

// QuantityChanged sets a line's quantity, keeping the old one so that "raised
// or lowered?" can be answered from the event alone.
type QuantityChanged struct {
	ProductID   string `json:"productId"`
	OldQuantity int    `json:"oldQuantity"`
	NewQuantity int    `json:"newQuantity"`
}

// CheckedOut closes the cart, keeping the lines and total that were bought.
type CheckedOut struct {
	Lines     []Line `json:"lines"`
	ItemCount int    `json:"itemCount"`
	Total     int64  `json:"total"`
	Currency  string `json:"currency"`
}

func (Opened) EventType() string          { return TypeOpened }
func (ItemAdded) EventType() string       { return TypeItemAdded }
func (ItemRemoved) EventType() string     { return TypeItemRemoved }
func (QuantityChanged) EventType() string { return TypeQuantityChanged }
func (CheckedOut) EventType() string      { return TypeCheckedOut }
