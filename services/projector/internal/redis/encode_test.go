package redis

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

func TestAppendEntry_ReadsBackAsJSONMarshalWrites(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.FixedZone("CET", 3600))
	for name, h := range map[string]readmodel.HistoryEntry{
		"Plain": {Version: 3, EventID: "0195a3c0-0000-7000-8000-000000000001", Type: "cart.item-added", SchemaVersion: 2,
			Data:  json.RawMessage(`{"productId": "123", "unitPrice": {"amount": 1899, "currency": "EUR"}, "quantity": 2}`),
			Actor: "alice", CorrelationID: "req-1", OccurredAt: at},
		"Escapes": {Version: 1, EventID: "e\"1", Type: "cart.opened", SchemaVersion: 1,
			Data:  json.RawMessage("{\"note\": \"a \\\"quoted\\\" <b>&\\n</b> \\u00e9\",\n \"x\":\t[1, 2]}"),
			Actor: "bj\u00f6rk <admin>", CausationID: "c\x01", OccurredAt: at},
		"SkippedNoData": {Version: 4, EventID: "e4", Type: "cart.item-added", SchemaVersion: 99, OccurredAt: at, Skipped: true},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := appendEntry(nil, h)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(h)
			if err != nil {
				t.Fatal(err)
			}
			var g, w readmodel.HistoryEntry
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("%s: %v", got, err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			var gd, wd any
			_ = json.Unmarshal(g.Data, &gd)
			_ = json.Unmarshal(w.Data, &wd)
			if !reflect.DeepEqual(gd, wd) {
				t.Errorf("data %s, want %s", g.Data, w.Data)
			}
			g.Data, w.Data = nil, nil
			if !reflect.DeepEqual(g, w) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}
