package load

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// syntheticNamespace makes SyntheticCartID stable across processes: the
// load generator and the raw read baseline agree on the ids without talking.
var syntheticNamespace = uuid.MustParse("6f1d3c1e-56a4-4c8e-9b0e-2f7f4b8f0c11")

// SyntheticCartID is the id of the i-th synthetic cart.
func SyntheticCartID(i int) string {
	return uuid.NewSHA1(syntheticNamespace, []byte("cart-"+strconv.Itoa(i))).String()
}

// SyntheticCart is the i-th synthetic cart's document as the projector would
// store it: an open cart of customer, with the same three lines a reads run
// prepares, so that the raw read baseline moves documents of the real size.
func SyntheticCart(i int, customer string) ([]byte, error) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	lines := []readmodel.Line{
		{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 2, LineTotal: 3798},
		{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 1, LineTotal: 1250},
		{ProductID: "789", Name: "Milk frother", UnitPrice: 3499, Currency: "EUR", Quantity: 1, LineTotal: 3499},
	}
	doc := readmodel.Cart{
		CartID: SyntheticCartID(i), CustomerID: customer, Status: "open", Version: 4,
		Lines: lines, ItemCount: 4, Total: 3798 + 1250 + 3499, Currency: "EUR",
		CreatedAt: at, UpdatedAt: at.Add(time.Minute),
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("load: synthetic cart %d: %w", i, err)
	}
	return b, nil
}

// CustomerID is the id of the i-th customer of a run.
func CustomerID(prefix string, i int) string { return prefix + "-" + strconv.Itoa(i) }
