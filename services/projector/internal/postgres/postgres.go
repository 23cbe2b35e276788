// Package postgres sets up the projector's connections to the event log.
// The projector only reads events, and a full rebuild reads every event of
// the log: their jsonb columns arrive from PostgreSQL as valid JSON, so raw
// JSON values (an event's data) are taken as they come instead of being
// parsed once more to be checked, and the metadata, a flat object of
// strings, is read without reflection.
package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// NewPool connects a pool to url with the projector's settings.
func NewPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	Configure(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return pool, nil
}

// Configure makes every connection of the pool read jsonb into a
// json.RawMessage without parsing it (other targets as usual).
func Configure(cfg *pgxpool.Config) {
	after := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		conn.TypeMap().RegisterType(&pgtype.Type{
			Name: "jsonb", OID: pgtype.JSONBOID,
			Codec: &pgtype.JSONBCodec{Marshal: json.Marshal, Unmarshal: unmarshal},
		})
		if after != nil {
			return after(ctx, conn)
		}
		return nil
	}
}

func unmarshal(data []byte, v any) error {
	switch v := v.(type) {
	case *json.RawMessage:
		*v = append((*v)[:0], data...)
		return nil
	case *envelope.Metadata:
		if decodeMetadata(data, v, false) {
			return nil
		}
	}
	return json.Unmarshal(data, v)
}

// decodeMetadata reads an event's metadata the way PostgreSQL writes jsonb
// out: a flat object of plain strings. It reports false, having changed
// nothing that matters, for anything else (an escape, another key, a
// value that is not a string), which encoding/json then reads. With alias,
// the strings share data's memory instead of being copies.
func decodeMetadata(data []byte, m *envelope.Metadata, alias bool) bool {
	var out envelope.Metadata
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		*m = out
		return skipSpace(data, i+1) == len(data)
	}
	for {
		key, next, ok := plainString(data, i, true)
		if !ok {
			return false
		}
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		val, next, ok := plainString(data, skipSpace(data, i+1), alias)
		if !ok {
			return false
		}
		switch key {
		case "actor":
			out.Actor = val
		case "correlationId":
			out.CorrelationID = val
		case "causationId":
			out.CausationID = val
		case "traceparent":
			out.TraceParent = val
		case "tracestate":
			out.TraceState = val
		default:
			return false
		}
		i = skipSpace(data, next)
		switch {
		case i < len(data) && data[i] == ',':
			i = skipSpace(data, i+1)
		case i < len(data) && data[i] == '}':
			if skipSpace(data, i+1) != len(data) {
				return false
			}
			*m = out
			return true
		default:
			return false
		}
	}
}

// plainString reads a JSON string without escapes starting at data[i]: its
// text (sharing data's memory with alias) and the index after its closing
// quote.
func plainString(data []byte, i int, alias bool) (string, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"' && alias:
			return unsafe.String(unsafe.SliceData(data[i+1:j]), j-i-1), j + 1, true
		case c == '"':
			return string(data[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}
