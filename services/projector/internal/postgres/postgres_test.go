package postgres

import (
	"encoding/json"
	"testing"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

func TestUnmarshalMetadataAsEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`,
		` { } `,
		`{"actor": "alice"}`,
		`{"actor": "customer-1", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "causationId": "c", "correlationId": "r"}`,
		`{"actor":"a","tracestate":"k=v"}`,
		`{"actor": "b\u00e9a"}`,
		`{"actor": "bé"}`,
		`{"actor": "a\"b"}`,
		`{"Actor": "case"}`,
		`{"actor": "a", "other": {"x": 1}}`,
		`{"actor": null}`,
		`{"actor": 1}`,
		`{"actor": "a",}`,
		`{"actor": "a"} x`,
		`[]`,
		`{"actor": "a", "actor": "b"}`,
	} {
		var want envelope.Metadata
		wantErr := json.Unmarshal([]byte(in), &want)
		var got envelope.Metadata
		err := unmarshal([]byte(in), &got)
		if (err != nil) != (wantErr != nil) || got != want {
			t.Errorf("%s: got %+v, %v; encoding/json %+v, %v", in, got, err, want, wantErr)
		}
	}
	var raw json.RawMessage
	if err := unmarshal([]byte(`{"a": 1}`), &raw); err != nil || string(raw) != `{"a": 1}` {
		t.Errorf("raw = %s, %v", raw, err)
	}
}

func FuzzDecodeMetadata(f *testing.F) {
	f.Add([]byte(`{"actor": "alice", "correlationId": "r"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got envelope.Metadata
		if !decodeMetadata(b, &got, len(b)%2 == 0) {
			return
		}
		var want envelope.Metadata
		if err := json.Unmarshal(b, &want); err != nil || got != want {
			t.Fatalf("%q: fast %+v; encoding/json %+v, %v", b, got, want, err)
		}
	})
}
