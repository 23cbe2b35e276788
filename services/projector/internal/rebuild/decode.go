package rebuild

import (
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/services/projector/internal/jsonscan"
)

// decoder reads the current schema version of each cart event as
// cart.Decode does, for the JSON PostgreSQL writes jsonb out as (plain
// strings and integers, known keys, once each), without reflection and
// without copying the strings products repeat. Anything else — another
// schema version, an escape, an unknown key, a null — it leaves to
// cart.Decode (ok false), which upcasts and reports errors. A rebuild
// decodes every event of the log; decoding was most of its CPU.
type decoder struct {
	strs map[string]string
}

// maxInterned bounds the strings a decoder keeps: about a catalog's
// product ids, names and currencies.
const maxInterned = 1 << 14

// schema is the version of each event type the decoder reads; cart.Decode
// takes every other version.
var schema = map[string]int{
	cart.TypeOpened:          1,
	cart.TypeItemAdded:       2,
	cart.TypeItemRemoved:     1,
	cart.TypeQuantityChanged: 1,
	cart.TypeCheckedOut:      1,
}

func (d *decoder) decode(typ string, schemaVersion int, data []byte) (cart.Event, bool) {
	if v, ok := schema[typ]; !ok || v != schemaVersion || cart.SchemaVersion[typ] != v {
		return nil, false
	}
	p := parser{Scanner: jsonscan.New(data), d: d}
	var (
		e  cart.Event
		ok bool
	)
	switch typ {
	case cart.TypeOpened:
		var v cart.Opened
		ok = p.Object(func(key string) bool {
			return key == "customerId" && p.String(&v.CustomerID)
		})
		e = v
	case cart.TypeItemAdded:
		var v cart.ItemAdded
		ok = p.Object(func(key string) bool {
			switch key {
			case "productId":
				return p.str(&v.ProductID)
			case "name":
				return p.str(&v.Name)
			case "quantity":
				return p.Int(&v.Quantity)
			case "unitPrice":
				return p.Object(func(key string) bool {
					switch key {
					case "amount":
						return p.Int64(&v.UnitPrice)
					case "currency":
						return p.str(&v.Currency)
					}
					return false
				})
			}
			return false
		})
		e = v
	case cart.TypeItemRemoved:
		var v cart.ItemRemoved
		ok = p.Object(func(key string) bool {
			switch key {
			case "productId":
				return p.str(&v.ProductID)
			case "quantity":
				return p.Int(&v.Quantity)
			case "reason":
				return p.str(&v.Reason)
			}
			return false
		})
		e = v
	case cart.TypeQuantityChanged:
		var v cart.QuantityChanged
		ok = p.Object(func(key string) bool {
			switch key {
			case "productId":
				return p.str(&v.ProductID)
			case "oldQuantity":
				return p.Int(&v.OldQuantity)
			case "newQuantity":
				return p.Int(&v.NewQuantity)
			}
			return false
		})
		e = v
	case cart.TypeCheckedOut:
		var v cart.CheckedOut
		ok = p.Object(func(key string) bool {
			switch key {
			case "lines":
				return p.Lines(p.str, &v.Lines)
			case "itemCount":
				return p.Int(&v.ItemCount)
			case "total":
				return p.Int64(&v.Total)
			case "currency":
				return p.str(&v.Currency)
			}
			return false
		})
		e = v
	}
	if !ok || !p.End() {
		return nil, false
	}
	return e, true
}

// parser is a jsonscan.Scanner that interns the strings many events repeat.
type parser struct {
	jsonscan.Scanner
	d *decoder
}

// str reads a string into dst: one kept from before, or a copy it keeps.
func (p *parser) str(dst *string) bool {
	s, ok := p.Raw()
	if !ok {
		return false
	}
	if v, ok := p.d.strs[s]; ok {
		*dst = v
		return true
	}
	v := string([]byte(s))
	if p.d.strs == nil {
		p.d.strs = make(map[string]string)
	}
	if len(p.d.strs) < maxInterned {
		p.d.strs[v] = v
	}
	*dst = v
	return true
}
