package redisstore

import (
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// decodeCart reads a cart document as appendDoc writes it (any key order,
// plain strings and integers), as json.Unmarshal would, without its
// reflection: a projector decodes the stored document of every cart it
// writes. It reports false for anything else (an escape, an unknown key, a
// null), which json.Unmarshal then reads.
func decodeCart(b []byte, c *readmodel.Cart) bool {
	p := docParser{b: b}
	var out readmodel.Cart
	ok := p.object(func(key string) bool {
		switch key {
		case "cartId":
			return p.str(&out.CartID)
		case "customerId":
			return p.str(&out.CustomerID)
		case "status":
			return p.str(&out.Status)
		case "version":
			return p.int(&out.Version)
		case "lines":
			return p.lines(&out.Lines)
		case "itemCount":
			return p.int(&out.ItemCount)
		case "total":
			return p.int64(&out.Total)
		case "currency":
			return p.str(&out.Currency)
		case "createdAt":
			return p.time(&out.CreatedAt)
		case "updatedAt":
			return p.time(&out.UpdatedAt)
		case "checkedOutAt":
			var t time.Time
			out.CheckedOutAt = &t
			return p.time(&t)
		}
		return false
	})
	if !ok || p.space() != len(p.b) {
		return false
	}
	*c = out
	return true
}

// docParser reads the subset of JSON decodeCart takes; each method
// reports false for anything outside it.
type docParser struct {
	b []byte
	i int
}

func (p *docParser) space() int {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
	return p.i
}

func (p *docParser) next(c byte) bool {
	if p.space() < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads an object whose keys field reads the values of, each key
// at most once.
func (p *docParser) object(field func(key string) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	var seen [12]string
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
// UTF-8, as bytes of the input.
func (p *docParser) raw() (string, bool) {
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
			return unsafe.String(unsafe.SliceData(s), len(s)), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

func (p *docParser) str(dst *string) bool {
	p.space()
	s, ok := p.raw()
	if ok {
		*dst = string([]byte(s))
	}
	return ok
}

// time reads a time as (*time.Time).UnmarshalJSON does: RFC 3339, strictly.
func (p *docParser) time(dst *time.Time) bool {
	p.space()
	s, ok := p.raw()
	return ok && dst.UnmarshalText(unsafe.Slice(unsafe.StringData(s), len(s))) == nil
}

// int64 reads an integer as encoding/json reads one into an int64: no
// fraction, no exponent, no leading zero; up to 18 digits.
func (p *docParser) int64(dst *int64) bool {
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

func (p *docParser) int(dst *int) bool {
	var n int64
	if !p.int64(&n) {
		return false
	}
	*dst = int(n)
	return true
}

// lines reads the document's lines; [] is an empty slice, as
// encoding/json makes it.
func (p *docParser) lines(dst *[]readmodel.Line) bool {
	if !p.next('[') {
		return false
	}
	out := []readmodel.Line{}
	if !p.next(']') {
		for {
			var l readmodel.Line
			ok := p.object(func(key string) bool {
				switch key {
				case "productId":
					return p.str(&l.ProductID)
				case "name":
					return p.str(&l.Name)
				case "unitPrice":
					return p.int64(&l.UnitPrice)
				case "currency":
					return p.str(&l.Currency)
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
