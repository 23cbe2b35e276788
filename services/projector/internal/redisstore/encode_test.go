package redisstore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
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

func TestAppendDoc_IsJSONMarshalOfTheDocument(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)
	out := at.Add(time.Hour)
	for name, s := range map[string]cart.State{
		"Empty": {},
		"Open": {CartID: "0195a3c0-0000-7000-8000-000000000001", CustomerID: "alice", Status: cart.StatusOpen, Version: 3,
			Lines: []cart.Line{
				{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 2, LineTotal: 3798},
				{ProductID: "456", Name: "Crème <brûlée> & \"mug\"", UnitPrice: 1250, Currency: "EUR", Quantity: 1, LineTotal: 1250},
			},
			OpenedAt: at, UpdatedAt: at.Add(time.Minute)},
		"CheckedOut": {CartID: "c", CustomerID: "bj\u00f6rk\x01\u2028", Status: cart.StatusCheckedOut, Version: 9, Lines: []cart.Line{},
			OpenedAt: at.In(time.FixedZone("CET", 3600)), UpdatedAt: out, CheckedOutAt: &out},
	} {
		t.Run(name, func(t *testing.T) {
			checkDoc(t, s)
		})
	}
}

func checkDoc(t *testing.T, s cart.State) {
	t.Helper()
	want, werr := json.Marshal(readmodel.FromState(s))
	got, err := appendDoc([]byte("prefix"), s)
	if (err != nil) != (werr != nil) {
		t.Fatalf("err = %v, json.Marshal: %v", err, werr)
	}
	if err == nil && string(got) != "prefix"+string(want) {
		t.Errorf("got  %s\nwant prefix%s", got, want)
	}
}

func FuzzAppendDoc(f *testing.F) {
	f.Add("0195a3c0-0000-7000-8000-000000000001", "alice", "open", 3, "123", "Espresso", int64(1899), "EUR", 2, int64(1700000000123456), false)
	f.Add("c", "b\u00e9a<", "checked-out", 1, "4\"5", "\xff", int64(-1), "", 0, int64(-62135596800000000), true)
	f.Fuzz(func(t *testing.T, id, customer, status string, version int, product, name string, price int64, currency string, qty int, micros int64, out bool) {
		at := time.UnixMicro(micros).UTC()
		s := cart.State{CartID: id, CustomerID: customer, Status: cart.Status(status), Version: version, OpenedAt: at, UpdatedAt: at.Add(time.Second)}
		if product != "" {
			s.Lines = []cart.Line{{ProductID: product, Name: name, UnitPrice: price, Currency: currency, Quantity: qty, LineTotal: price * int64(qty)}}
		}
		if out {
			s.CheckedOutAt = &at
		}
		checkDoc(t, s)
	})
}

func FuzzAppendCompact(f *testing.F) {
	f.Add([]byte(`{"name": "Espresso \"beans\" \\", "unitPrice": {"amount": 1899, "currency": "EUR"}, "x": [1, 2.5e3, true, null]}`))
	f.Add([]byte(" [ \"a\\\\\" , {\"b\" :\n\t\"\\u00e9 \"} ] "))
	f.Fuzz(func(t *testing.T, src []byte) {
		if !json.Valid(src) {
			return
		}
		var want bytes.Buffer
		if err := json.Compact(&want, src); err != nil {
			t.Fatal(err)
		}
		if got := appendCompact([]byte("x"), src); string(got) != "x"+want.String() {
			t.Fatalf("%q: got %q, want x%q", src, got, want.String())
		}
	})
}
