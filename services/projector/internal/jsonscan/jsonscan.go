// Package jsonscan reads the subset of JSON the projector's hot paths
// meet — objects of known keys, strings without escapes, integers, RFC 3339
// times — as encoding/json would, without its reflection. Every method
// reports false for anything outside the subset; callers then give the
// whole input to encoding/json, which decides. So a Scanner needs only be
// right when it says true.
package jsonscan

import (
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// MaxKeys is the most keys an object may have: more than any object the
// callers read.
const MaxKeys = 12

// A Scanner reads one JSON value from the front of b.
type Scanner struct {
	b []byte
	i int
}

// New returns a Scanner reading b.
func New(b []byte) Scanner { return Scanner{b: b} }

// End reports whether only whitespace is left.
func (s *Scanner) End() bool { return s.space() == len(s.b) }

func (s *Scanner) space() int {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
	return s.i
}

func (s *Scanner) next(c byte) bool {
	if s.space() < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// Object reads an object of at most MaxKeys keys, each at most once;
// field reads the value of key (it is called after the colon) and reports
// false for a key it does not take.
func (s *Scanner) Object(field func(key string) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	var seen [MaxKeys]string
	n := 0
	for {
		key, ok := s.Raw()
		if !ok || !s.next(':') {
			return false
		}
		for _, k := range seen[:n] {
			if k == key {
				return false
			}
		}
		if n == len(seen) || !field(key) {
			return false
		}
		seen[n] = key
		n++
		switch {
		case s.next(','):
		case s.next('}'):
			return true
		default:
			return false
		}
	}
}

// Array reads an array whose elements elem reads, one call each.
func (s *Scanner) Array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch {
		case s.next(','):
		case s.next(']'):
			return true
		default:
			return false
		}
	}
}

// Raw reads a string without escapes or control characters, in valid
// UTF-8, as a string sharing b's memory: for looking it up or comparing it
// while b is unchanged, never for keeping.
func (s *Scanner) Raw() (string, bool) {
	if s.space() >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	start, ascii := s.i+1, true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				return "", false
			}
			s.i = j + 1
			return unsafe.String(unsafe.SliceData(v), len(v)), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// String reads a string, as Raw does, into a copy.
func (s *Scanner) String(dst *string) bool {
	v, ok := s.Raw()
	if ok {
		*dst = string([]byte(v))
	}
	return ok
}

// Time reads a time as (*time.Time).UnmarshalJSON does: RFC 3339, strictly.
func (s *Scanner) Time(dst *time.Time) bool {
	v, ok := s.Raw()
	return ok && dst.UnmarshalText(unsafe.Slice(unsafe.StringData(v), len(v))) == nil
}

// Int64 reads an integer as encoding/json reads one into an int64: no
// fraction, no exponent, no leading zero; up to 18 digits, so it cannot
// overflow.
func (s *Scanner) Int64(dst *int64) bool {
	s.space()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start := s.i
	var n int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		n = n*10 + int64(s.b[s.i]-'0')
		s.i++
	}
	digits := s.i - start
	if digits == 0 || digits > 18 || (digits > 1 && s.b[start] == '0') {
		return false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return false
	}
	if neg {
		n = -n
	}
	*dst = n
	return true
}

// Int reads an integer as Int64 does.
func (s *Scanner) Int(dst *int) bool {
	var n int64
	if !s.Int64(&n) {
		return false
	}
	*dst = int(n)
	return true
}

// Lines reads an array of cart lines, each string through str (String, or
// a reader of the caller's that interns); [] is an empty slice, as
// encoding/json makes it. The cart documents' lines are the same fields,
// and convert.
func (s *Scanner) Lines(str func(*string) bool, dst *[]cart.Line) bool {
	out := []cart.Line{}
	ok := s.Array(func() bool {
		var l cart.Line
		ok := s.Object(func(key string) bool {
			switch key {
			case "productId":
				return str(&l.ProductID)
			case "name":
				return str(&l.Name)
			case "unitPrice":
				return s.Int64(&l.UnitPrice)
			case "currency":
				return str(&l.Currency)
			case "quantity":
				return s.Int(&l.Quantity)
			case "lineTotal":
				return s.Int64(&l.LineTotal)
			}
			return false
		})
		if !ok {
			return false
		}
		out = append(out, l)
		return true
	})
	if ok {
		*dst = out
	}
	return ok
}
