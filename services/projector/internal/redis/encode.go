package redis

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

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
	t, err := h.OccurredAt.MarshalJSON()
	if err != nil {
		return b, err
	}
	b = append(b, t...)
	if h.Skipped {
		b = append(b, `,"skipped":true`...)
	}
	return append(b, '}'), nil
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
// tokens; src must be valid JSON.
func appendCompact(b, src []byte) []byte {
	inString, escaped := false, false
	for _, c := range src {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ', c == '\t', c == '\n', c == '\r':
			continue
		}
		b = append(b, c)
	}
	return b
}
