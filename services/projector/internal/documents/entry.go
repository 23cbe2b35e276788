package documents

import (
	"encoding/binary"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// A remembered record is kept as one string in a compact binary form: a
// cart of a few lines takes a couple of hundred bytes, and nothing in it is
// a pointer for the garbage collector to follow. The states decoded from it
// share its bytes (strings are immutable).
//
// Per document: the stamp, the version, the history length, the skipped
// versions, then the state: the cart id (0 "", 1 the cart's own, 2 another,
// spelled out), customer, status, version, times, the check-out time when
// there is one, and the lines (their count plus one; 0 for nil). A time is
// its Unix seconds, nanoseconds and zone offset, so that it is written
// again exactly as the store holds it.

// encodeDocs encodes the documents of a cart; ok is false for a document
// that could not be read from the store.
func encodeDocs(cartID string, docs []Doc) (string, bool) {
	b := make([]byte, 0, 256)
	b = binary.AppendUvarint(b, uint64(len(docs)))
	for _, d := range docs {
		if d.Corrupt != nil || d.Version < 0 || d.HistoryLen < 0 {
			return "", false
		}
		b = append(b, d.Stamp[:]...)
		b = binary.AppendUvarint(b, uint64(d.Version))
		b = binary.AppendUvarint(b, uint64(d.HistoryLen))
		b = binary.AppendUvarint(b, uint64(len(d.Skipped)))
		for _, v := range d.Skipped {
			b = binary.AppendVarint(b, int64(v))
		}
		b = appendState(b, cartID, d.State)
	}
	return string(b), true
}

func appendState(b []byte, cartID string, s cart.State) []byte {
	switch s.CartID {
	case "":
		b = append(b, 0)
	case cartID:
		b = append(b, 1)
	default:
		b = appendString(append(b, 2), s.CartID)
	}
	b = appendString(b, s.CustomerID)
	b = appendString(b, string(s.Status))
	b = binary.AppendVarint(b, int64(s.Version))
	b = appendTime(b, s.OpenedAt)
	b = appendTime(b, s.UpdatedAt)
	if s.CheckedOutAt == nil {
		b = append(b, 0)
	} else {
		b = appendTime(append(b, 1), *s.CheckedOutAt)
	}
	if s.Lines == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Lines))+1)
	for _, l := range s.Lines {
		b = appendString(b, l.ProductID)
		b = appendString(b, l.Name)
		b = appendString(b, l.Currency)
		b = binary.AppendVarint(b, l.UnitPrice)
		b = binary.AppendVarint(b, int64(l.Quantity))
		b = binary.AppendVarint(b, l.LineTotal)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendTime(b []byte, t time.Time) []byte {
	_, offset := t.Zone()
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	return binary.AppendVarint(b, int64(offset))
}

// decodeDocs decodes what encodeDocs encoded.
func decodeDocs(cartID, e string) ([]Doc, bool) {
	r := reader{s: e, ok: true}
	docs := make([]Doc, r.count())
	for i := range docs {
		d := &docs[i]
		if len(r.s) < len(d.Stamp) {
			return nil, false
		}
		copy(d.Stamp[:], r.s)
		r.s = r.s[len(d.Stamp):]
		d.Version, d.HistoryLen = int(r.uvarint()), int(r.uvarint())
		if n := r.count(); n > 0 {
			d.Skipped = make([]int, n)
			for k := range d.Skipped {
				d.Skipped[k] = int(r.varint())
			}
		}
		d.State = r.state(cartID)
	}
	return docs, r.ok && r.s == ""
}

// reader reads an entry; a read past its end sets ok to false and reads
// zeros.
type reader struct {
	s  string
	ok bool
}

func (r *reader) state(cartID string) cart.State {
	var s cart.State
	switch r.byte() {
	case 1:
		s.CartID = cartID
	case 2:
		s.CartID = r.string()
	}
	s.CustomerID, s.Status = r.string(), cart.Status(r.string())
	s.Version = int(r.varint())
	s.OpenedAt, s.UpdatedAt = r.time(), r.time()
	if r.byte() == 1 {
		t := r.time()
		s.CheckedOutAt = &t
	}
	if n := r.uvarint(); n > uint64(len(r.s))+1 {
		r.ok = false
	} else if n > 0 {
		s.Lines = make([]cart.Line, n-1)
		for i := range s.Lines {
			l := &s.Lines[i]
			l.ProductID, l.Name, l.Currency = r.string(), r.string(), r.string()
			l.UnitPrice, l.Quantity, l.LineTotal = r.varint(), int(r.varint()), r.varint()
		}
	}
	return s
}

func (r *reader) time() time.Time {
	sec, nsec, offset := r.varint(), r.uvarint(), r.varint()
	t := time.Unix(sec, int64(nsec))
	if offset == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(offset)))
}

func (r *reader) byte() byte {
	if r.s == "" {
		r.ok = false
		return 0
	}
	c := r.s[0]
	r.s = r.s[1:]
	return c
}

func (r *reader) string() string {
	n := r.count()
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// count reads a length, bounded by what is left to read.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.s)) {
		r.ok = false
		return 0
	}
	return int(n)
}

func (r *reader) uvarint() uint64 {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		c := r.byte()
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	r.ok = false
	return 0
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}
