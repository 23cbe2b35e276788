package redisstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// appendEntry appends a history entry's JSON to b: what json.Marshal
// writes, without its reflection and without parsing the event's data once
// more — it is JSON already: from the event log's jsonb, or the data of an
// event that decoded (only its insignificant whitespace is dropped). A
// rebuild writes one entry per event of the log.
func appendEntry(b []byte, h readmodel.HistoryEntry) ([]byte, error) {
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, int64(h.Version), 10)
	b = append(b, `,"eventId":`...)
	b = appendString(b, h.EventID)
	b = append(b, `,"type":`...)
	b = appendString(b, h.Type)
	b = append(b, `,"schemaVersion":`...)
	b = strconv.AppendInt(b, int64(h.SchemaVersion), 10)
	b = append(b, `,"data":`...)
	if len(h.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = appendCompact(b, h.Data)
	}
	for _, f := range [...]struct{ name, v string }{
		{`,"actor":`, h.Actor}, {`,"correlationId":`, h.CorrelationID}, {`,"causationId":`, h.CausationID},
	} {
		if f.v != "" {
			b = append(b, f.name...)
			b = appendString(b, f.v)
		}
	}
	b = append(b, `,"occurredAt":`...)
	b, err := appendTime(b, h.OccurredAt)
	if err != nil {
		return b, err
	}
	if h.Skipped {
		b = append(b, `,"skipped":true`...)
	}
	return append(b, '}'), nil
}

// appendDoc appends a cart's document, readmodel.FromState(s), as
// json.Marshal writes it, byte for byte: readers compare and cache it as
// stored, and the live projectors and a rebuild must write the same bytes.
func appendDoc(b []byte, s cart.State) ([]byte, error) {
	b = append(b, `{"cartId":`...)
	b = appendString(b, s.CartID)
	b = append(b, `,"customerId":`...)
	b = appendString(b, s.CustomerID)
	b = append(b, `,"status":`...)
	b = appendString(b, string(s.Status))
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(s.Version), 10)
	b = append(b, `,"lines":[`...)
	for i, l := range s.Lines {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"productId":`...)
		b = appendString(b, l.ProductID)
		b = append(b, `,"name":`...)
		b = appendString(b, l.Name)
		b = append(b, `,"unitPrice":`...)
		b = strconv.AppendInt(b, l.UnitPrice, 10)
		b = append(b, `,"currency":`...)
		b = appendString(b, l.Currency)
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, int64(l.Quantity), 10)
		b = append(b, `,"lineTotal":`...)
		b = strconv.AppendInt(b, l.LineTotal, 10)
		b = append(b, '}')
	}
	b = append(b, `],"itemCount":`...)
	b = strconv.AppendInt(b, int64(s.ItemCount()), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, s.Total(), 10)
	if c := s.Currency(); c != "" {
		b = append(b, `,"currency":`...)
		b = appendString(b, c)
	}
	var err error
	b = append(b, `,"createdAt":`...)
	if b, err = appendTime(b, s.OpenedAt); err != nil {
		return b, err
	}
	b = append(b, `,"updatedAt":`...)
	if b, err = appendTime(b, s.UpdatedAt); err != nil {
		return b, err
	}
	if s.CheckedOutAt != nil {
		b = append(b, `,"checkedOutAt":`...)
		if b, err = appendTime(b, *s.CheckedOutAt); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendTime appends t as (time.Time).MarshalJSON writes it, without its
// allocation.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return b, fmt.Errorf("time %v: %w", t, err)
	}
	return append(b, '"'), nil
}

// appendString appends s as a JSON string. Plain printable ASCII, which ids,
// types and actors are, is copied; anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			q, err := json.Marshal(s)
			if err != nil {
				return append(b, `""`...) // unreachable: every string marshals
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendCompact appends JSON src without the whitespace between its
// tokens, as json.Compact does; src must be valid JSON. It copies runs
// of bytes: strings whole, and the tokens between them.
func appendCompact(b, src []byte) []byte {
	b = slices.Grow(b, len(src))
	for i := 0; i < len(src); {
		switch c := src[i]; c {
		case ' ', '\t', '\n', '\r':
			i++
		case '"':
			end := stringEnd(src, i+1)
			b = append(b, src[i:end]...)
			i = end
		default:
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != ' ' && src[j] != '\t' && src[j] != '\n' && src[j] != '\r' {
				j++
			}
			b = append(b, src[i:j]...)
			i = j
		}
	}
	return b
}

// stringEnd is the index after the quote closing the string whose text
// starts at src[i] (or len(src)).
func stringEnd(src []byte, i int) int {
	for {
		q := bytes.IndexByte(src[i:], '"')
		if q < 0 {
			return len(src)
		}
		i += q
		escapes := 0
		for k := i - 1; k >= 0 && src[k] == '\\'; k-- {
			escapes++
		}
		i++
		if escapes%2 == 0 {
			return i
		}
	}
}
