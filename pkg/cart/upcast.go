package cart

import (
	"encoding/json"

	jsonv1 "github.com/go-json-experiment/json/v1"
)

// Schema history of the events, newest last. Each older version has an
// upcaster that turns its stored data into today's event, so events written
// years ago fold exactly as they did.
//
// cart.item-added
//   v1: {"productId", "name", "unitPrice": 1899, "currency": "EUR", "quantity"}
//   v2: {"productId", "name", "unitPrice": {"amount": 1899, "currency": "EUR"}, "quantity"}
//       A price is an amount in a currency: the two travel together, so that a
//       subscriber cannot read one without the other.

// Money is an amount in minor units of a currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// itemAddedV2 is the stored shape of ItemAdded today.
type itemAddedV2 struct {
	ProductID string `json:"productId"`
	Name      string `json:"name"`
	UnitPrice Money  `json:"unitPrice"`
	Quantity  int    `json:"quantity"`
}

// MarshalJSON writes ItemAdded in its current schema version.
func (e ItemAdded) MarshalJSON() ([]byte, error) {
	return json.Marshal(itemAddedV2{
		ProductID: e.ProductID, Name: e.Name, Quantity: e.Quantity,
		UnitPrice: Money{Amount: e.UnitPrice, Currency: e.Currency},
	})
}

// UnmarshalJSON reads ItemAdded in its current schema version.
func (e *ItemAdded) UnmarshalJSON(b []byte) error {
	var v itemAddedV2
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = v.event()
	return nil
}

func (v itemAddedV2) event() ItemAdded {
	return ItemAdded{ProductID: v.ProductID, Name: v.Name, UnitPrice: v.UnitPrice.Amount, Currency: v.UnitPrice.Currency, Quantity: v.Quantity}
}

// upcastItemAddedV1 reads cart.item-added v1, whose price was two flat fields.
func upcastItemAddedV1(data []byte) (Event, error) {
	var v struct {
		ProductID string `json:"productId"`
		Name      string `json:"name"`
		UnitPrice int64  `json:"unitPrice"`
		Currency  string `json:"currency"`
		Quantity  int    `json:"quantity"`
	}
	if err := jsonv1.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return ItemAdded(v), nil
}
