package envelope_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
)

func TestCloudEventRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 30, 0, 123456000, time.UTC)
	e, err := envelope.New("0193a1b2-0000-7000-8000-000000000001", "0193a1b2-0000-7000-8000-0000000000aa", 2,
		cart.ItemAdded{ProductID: "123", Name: "Espresso", UnitPrice: 1899, Currency: "EUR", Quantity: 2},
		envelope.Metadata{Actor: "alice", CorrelationID: "req-1", CausationID: "cmd-1", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, at)
	if err != nil {
		t.Fatal(err)
	}
	b, err := envelope.MarshalCloudEvent(e, "urn:cart-cqrs:command")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"specversion": "1.0", "id": e.EventID, "type": "cart.item-added", "subject": e.StreamID,
		"source": "urn:cart-cqrs:command", "streamversion": 2.0, "schemaversion": float64(cart.SchemaVersion[cart.TypeItemAdded]), "datacontenttype": "application/json",
		"actor": "alice", "correlationid": "req-1", "causationid": "cmd-1",
	} {
		if raw[k] != want {
			t.Errorf("%s = %v, want %v", k, raw[k], want)
		}
	}
	if _, ok := raw["data"].(map[string]any); !ok {
		t.Errorf("data is not a JSON object: %v", raw["data"])
	}

	got, err := envelope.UnmarshalCloudEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := got.Recorded()
	if err != nil || rec.Version != 2 || rec.Event.(cart.ItemAdded).Quantity != 2 {
		t.Fatalf("Recorded() = %+v, %v", rec, err)
	}
	var gotData, wantData any
	_ = json.Unmarshal(got.Data, &gotData)
	_ = json.Unmarshal(e.Data, &wantData)
	got.Data, e.Data = nil, nil
	if !reflect.DeepEqual(got, e) || !reflect.DeepEqual(gotData, wantData) {
		t.Fatalf("round trip:\n%+v\n%+v", got, e)
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	for name, msg := range map[string]string{
		"not json":          `nope`,
		"not a cloudevent":  `{"hello":"world"}`,
		"no stream version": `{"specversion":"1.0","id":"1","source":"s","type":"cart.opened","subject":"c","schemaversion":1,"data":{}}`,
		"no subject":        `{"specversion":"1.0","id":"1","source":"s","type":"cart.opened","streamversion":1,"schemaversion":1,"data":{}}`,
		"zero version":      `{"specversion":"1.0","id":"1","source":"s","type":"cart.opened","subject":"c","streamversion":0,"schemaversion":1,"data":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := envelope.UnmarshalCloudEvent([]byte(msg)); !errors.Is(err, envelope.ErrNotCartEvent) {
				t.Fatalf("err = %v, want ErrNotCartEvent", err)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	if got := envelope.Subject("cart.events", "c1", cart.TypeQuantityChanged); got != "cart.events.c1.item-quantity-changed" {
		t.Fatalf("Subject() = %q", got)
	}
}

// TestUnmarshalCartEvent: a consumer of the cart stream gets the cart id in
// the event log's form, and no event for a subject that is no cart id.
func TestUnmarshalCartEvent(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	for subject, want := range map[string]string{
		"0193A1B2-0000-7000-8000-0000000000AA": "0193a1b2-0000-7000-8000-0000000000aa",
		"not-a-cart":                           "",
	} {
		e, err := envelope.New("0193a1b2-0000-7000-8000-000000000001", subject, 1, cart.Opened{CustomerID: "alice"}, envelope.Metadata{}, at)
		if err != nil {
			t.Fatal(err)
		}
		b, err := envelope.MarshalCloudEvent(e, "urn:cart-cqrs:command")
		if err != nil {
			t.Fatal(err)
		}
		got, err := envelope.UnmarshalCartEvent(b)
		switch {
		case want == "" && !errors.Is(err, envelope.ErrNotCartEvent):
			t.Errorf("%s: %v, want ErrNotCartEvent", subject, err)
		case want != "" && (err != nil || got.StreamID != want):
			t.Errorf("%s: %q, %v, want %q", subject, got.StreamID, err, want)
		}
	}
}

// BenchmarkMarshalCloudEvent compares the encoding of a stored event by the
// fast path and by the CloudEvents SDK.
func BenchmarkMarshalCloudEvent(b *testing.B) {
	e := benchEnvelope()
	for name, encode := range map[string]func(envelope.Envelope, string) ([]byte, error){
		"own": func(e envelope.Envelope, s string) ([]byte, error) {
			b, _ := envelope.MarshalOwnForTest(e, s)
			return b, nil
		},
		"sdk": envelope.MarshalSDKForTest,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encode(e, "urn:cart-cqrs:command"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchEnvelope() envelope.Envelope {
	return envelope.Envelope{
		EventID: "0195a3c0-0000-7000-8000-000000000001", StreamID: "0195a3c0-0000-7000-8000-0000000000aa",
		StreamType: envelope.StreamTypeCart, Version: 7, Type: "cart.item-added", SchemaVersion: 2,
		Data:       []byte(`{"productId":"123","name":"Espresso beans 1 kg","unitPrice":{"amount":1899,"currency":"EUR"},"quantity":2}`),
		OccurredAt: time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC),
		Metadata:   envelope.Metadata{Actor: "alice", CorrelationID: "req-1", CausationID: "req-1"},
	}
}

// BenchmarkUnmarshalCloudEvent compares the decoding of a message as the
// relay writes it by the fast path and by the CloudEvents SDK.
func BenchmarkUnmarshalCloudEvent(b *testing.B) {
	msg, err := envelope.MarshalCloudEvent(benchEnvelope(), "urn:cart-cqrs:command")
	if err != nil {
		b.Fatal(err)
	}
	for name, decode := range map[string]func([]byte) (envelope.Envelope, error){
		"own": func(b []byte) (envelope.Envelope, error) { e, _ := envelope.UnmarshalOwnForTest(b); return e, nil },
		"sdk": envelope.UnmarshalSDKForTest,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decode(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
