package redisstore

import (
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/jsonscan"
)

// decodeCart reads a cart document as appendDoc writes it (any key order,
// plain strings and integers), as json.Unmarshal would, without its
// reflection: a projector decodes the stored document of every cart it
// writes. It reports false for anything else (an escape, an unknown key, a
// null), which json.Unmarshal then reads.
func decodeCart(b []byte, c *readmodel.Cart) bool {
	p := jsonscan.New(b)
	var out readmodel.Cart
	ok := p.Object(func(key string) bool {
		switch key {
		case "cartId":
			return p.String(&out.CartID)
		case "customerId":
			return p.String(&out.CustomerID)
		case "status":
			return p.String(&out.Status)
		case "version":
			return p.Int(&out.Version)
		case "lines":
			return decodeLines(&p, &out.Lines)
		case "itemCount":
			return p.Int(&out.ItemCount)
		case "total":
			return p.Int64(&out.Total)
		case "currency":
			return p.String(&out.Currency)
		case "createdAt":
			return p.Time(&out.CreatedAt)
		case "updatedAt":
			return p.Time(&out.UpdatedAt)
		case "checkedOutAt":
			var t time.Time
			out.CheckedOutAt = &t
			return p.Time(&t)
		}
		return false
	})
	if !ok || !p.End() {
		return false
	}
	*c = out
	return true
}

// decodeLines reads the document's lines: the cart's, converted.
func decodeLines(p *jsonscan.Scanner, dst *[]readmodel.Line) bool {
	var lines []cart.Line
	if !p.Lines(p.String, &lines) {
		return false
	}
	out := make([]readmodel.Line, len(lines))
	for i, l := range lines {
		out[i] = readmodel.Line(l)
	}
	*dst = out
	return true
}
