package rebuild

import (
	"unicode/utf8"
	"unsafe"

	"github.com/cart-cqrs/cart/pkg/cart"
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
	p := parser{d: d, b: data}
	var (
		e  cart.Event
		ok bool
	)
	switch typ {
	case cart.TypeOpened:
		var v cart.Opened
		ok = p.object(func(key string) bool {
			return key == "customerId" && p.str(&v.CustomerID, false)
		})
		e = v
	case cart.TypeItemAdded:
		var v cart.ItemAdded
		ok = p.object(func(key string) bool {
			switch key {
			case "productId":
				return p.str(&v.ProductID, true)
			case "name":
				return p.str(&v.Name, true)
			case "quantity":
				return p.int(&v.Quantity)
			case "unitPrice":
				return p.object(func(key string) bool {
					switch key {
					case "amount":
						return p.int64(&v.UnitPrice)
					case "currency":
						return p.str(&v.Currency, true)
					}
					return false
				})
			}
			return false
		})
		e = v
	case cart.TypeItemRemoved:
		var v cart.ItemRemoved
		ok = p.object(func(key string) bool {
			switch key {
			case "productId":
				return p.str(&v.ProductID, true)
			case "quantity":
				return p.int(&v.Quantity)
			case "reason":
				return p.str(&v.Reason, true)
			}
			return false
		})
		e = v
	case cart.TypeQuantityChanged:
		var v cart.QuantityChanged
		ok = p.object(func(key string) bool {
			switch key {
			case "productId":
				return p.str(&v.ProductID, true)
			case "oldQuantity":
				return p.int(&v.OldQuantity)
			case "newQuantity":
				return p.int(&v.NewQuantity)
			}
			return false
		})
		e = v
	case cart.TypeCheckedOut:
		var v cart.CheckedOut
		ok = p.object(func(key string) bool {
			switch key {
			case "lines":
				return p.lines(&v.Lines)
			case "itemCount":
				return p.int(&v.ItemCount)
			case "total":
				return p.int64(&v.Total)
			case "currency":
				return p.str(&v.Currency, true)
			}
			return false
		})
		e = v
	}
	if !ok || p.space() != len(p.b) {
		return nil, false
	}
	return e, true
}

// parser reads the subset of JSON decoder takes; each method reports false
// for anything outside it.
type parser struct {
	d *decoder
	b []byte
	i int
}

func (p *parser) space() int {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
	return p.i
}

func (p *parser) next(c byte) bool {
	if p.space() < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads an object whose keys field reads the values of, each key
// at most once (field is called after the colon).
func (p *parser) object(field func(key string) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	var seen [8]string
	n := 0
	for {
		p.space()
		key, ok := p.raw()
		if !ok || !p.next(':') {
			return false
		}
		for _, s := range seen[:n] {
			if s == key {
				return false
			}
		}
		if n == len(seen) || !field(key) {
			return false
		}
		seen[n] = key
		n++
		switch {
		case p.next(','):
		case p.next('}'):
			return true
		default:
			return false
		}
	}
}

// raw reads a string without escapes or control characters, in valid
// UTF-8, as a string sharing the input's memory.
func (p *parser) raw() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	start, ascii := p.i+1, true
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := p.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			p.i = j + 1
			return unsafeString(s), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// str reads a string into dst: a copy, or one kept from before (intern)
// for the strings many events repeat.
func (p *parser) str(dst *string, intern bool) bool {
	p.space()
	s, ok := p.raw()
	if !ok {
		return false
	}
	if !intern {
		*dst = string([]byte(s))
		return true
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

// int64 reads an integer as encoding/json reads one into an int64: no
// fraction, no exponent, no leading zero; up to 18 digits.
func (p *parser) int64(dst *int64) bool {
	p.space()
	neg := p.i < len(p.b) && p.b[p.i] == '-'
	if neg {
		p.i++
	}
	start := p.i
	var n int64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int64(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 18 || (digits > 1 && p.b[start] == '0') {
		return false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return false
	}
	if neg {
		n = -n
	}
	*dst = n
	return true
}

func (p *parser) int(dst *int) bool {
	var n int64
	if !p.int64(&n) {
		return false
	}
	*dst = int(n)
	return true
}

// lines reads an array of cart lines; [] is an empty slice, as
// encoding/json makes it.
func (p *parser) lines(dst *[]cart.Line) bool {
	if !p.next('[') {
		return false
	}
	out := []cart.Line{}
	if !p.next(']') {
		for {
			var l cart.Line
			ok := p.object(func(key string) bool {
				switch key {
				case "productId":
					return p.str(&l.ProductID, true)
				case "name":
					return p.str(&l.Name, true)
				case "unitPrice":
					return p.int64(&l.UnitPrice)
				case "currency":
					return p.str(&l.Currency, true)
				case "quantity":
					return p.int(&l.Quantity)
				case "lineTotal":
					return p.int64(&l.LineTotal)
				}
				return false
			})
			if !ok {
				return false
			}
			out = append(out, l)
			if p.next(']') {
				break
			}
			if !p.next(',') {
				return false
			}
		}
	}
	*dst = out
	return true
}

// unsafeString is b as a string sharing its memory, for looking it up or
// comparing it while b is unchanged.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
