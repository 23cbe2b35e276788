package envelope_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/cart/carttest"
	"github.com/cart-cqrs/cart/pkg/envelope"
)

// FuzzUnmarshalCloudEvent feeds the projector's decoder any message, as a
// misbehaving publisher on the stream could: UnmarshalCloudEvent returns an
// envelope or ErrNotCartEvent, never panics; an envelope it returns
// decodes (Recorded) into an event or an error, the event folds, and the
// envelope encodes again into a CloudEvent that reads back the same.
//
// Seeds: real CloudEvents made by MarshalCloudEvent from every stored event
// example (package carttest) and the edge cases in
// testdata/fuzz/FuzzUnmarshalCloudEvent.
func FuzzUnmarshalCloudEvent(f *testing.F) {
	at := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)
	for i, ev := range carttest.MustStoredEvents(f) {
		e := envelope.Envelope{
			EventID: fmt.Sprintf("0195a3c0-0000-7000-8000-%012d", i+1), StreamID: "0195a3c0-0000-7000-8000-0000000000aa",
			StreamType: envelope.StreamTypeCart, Version: i + 1, Type: ev.Type, SchemaVersion: ev.SchemaVersion,
			Data: ev.Data, OccurredAt: at,
			Metadata: envelope.Metadata{Actor: "alice", CorrelationID: "req-1", CausationID: "req-1",
				TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "congo=t61rcWkgMzE"},
		}
		b, err := envelope.MarshalCloudEvent(e, "urn:cart-cqrs:command")
		if err != nil {
			f.Fatalf("MarshalCloudEvent(%s): %v", ev.Name(), err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		e, err := envelope.UnmarshalCloudEvent(msg)
		if err != nil {
			if !errors.Is(err, envelope.ErrNotCartEvent) {
				t.Fatalf("UnmarshalCloudEvent: %v, want ErrNotCartEvent", err)
			}
			return
		}
		if e.Version < 1 || e.SchemaVersion < 1 || e.StreamID == "" || e.StreamType != envelope.StreamTypeCart {
			t.Fatalf("UnmarshalCloudEvent accepted %+v", e)
		}
		if r, err := e.Recorded(); err == nil {
			if r.Event == nil || r.CartID != e.StreamID || r.Version != e.Version {
				t.Fatalf("Recorded() = %+v", r)
			}
			s := cart.Evolve(cart.State{}, r)
			_, _, _ = s.ItemCount(), s.Total(), s.Currency()
		}

		// What was read is published again by a relay the same way.
		b, err := envelope.MarshalCloudEvent(e, "urn:cart-cqrs:fuzz")
		if err != nil {
			return // e.g. data that is not JSON: refused, not a panic
		}
		back, err := envelope.UnmarshalCloudEvent(b)
		if err != nil {
			t.Fatalf("UnmarshalCloudEvent(MarshalCloudEvent(e)) = %v\n%s", err, b)
		}
		// The SDK trims the context attributes it is given.
		trim := strings.TrimSpace
		if back.EventID != trim(e.EventID) || back.StreamID != trim(e.StreamID) || back.Version != e.Version ||
			back.Type != trim(e.Type) || back.SchemaVersion != e.SchemaVersion || back.Metadata != e.Metadata ||
			!back.OccurredAt.Equal(e.OccurredAt) || !sameJSON(back.Data, e.Data) {
			t.Fatalf("round trip:\n%+v\n%+v", back, e)
		}
	})
}

// sameJSON reports whether a and b are the same JSON value (or the same
// bytes, when they are not JSON). No data is published again as null.
func sameJSON(a, b []byte) bool {
	if len(a) == 0 {
		a = []byte("null")
	}
	if len(b) == 0 {
		b = []byte("null")
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return string(a) == string(b)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

// FuzzUnmarshalOwnShape holds the fast path of UnmarshalCloudEvent to the
// SDK's: for any message, both accept it with the same envelope, or the
// fast path declines it.
func FuzzUnmarshalOwnShape(f *testing.F) {
	at := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)
	for i, ev := range carttest.MustStoredEvents(f) {
		e := envelope.Envelope{
			EventID: fmt.Sprintf("0195a3c0-0000-7000-8000-%012d", i+1), StreamID: "0195a3c0-0000-7000-8000-0000000000aa",
			StreamType: envelope.StreamTypeCart, Version: i + 1, Type: ev.Type, SchemaVersion: ev.SchemaVersion,
			Data: ev.Data, OccurredAt: at, Metadata: envelope.Metadata{Actor: "alice", CorrelationID: "req-1"},
		}
		b, err := envelope.MarshalCloudEvent(e, "urn:cart-cqrs:command")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		own, ok := envelope.UnmarshalOwnForTest(msg)
		if !ok {
			return
		}
		sdk, err := envelope.UnmarshalSDKForTest(msg)
		if err != nil {
			t.Fatalf("fast path accepted what the SDK refuses (%v):\n%s", err, msg)
		}
		if own.EventID != sdk.EventID || own.StreamID != sdk.StreamID || own.Version != sdk.Version ||
			own.Type != sdk.Type || own.SchemaVersion != sdk.SchemaVersion || own.Metadata != sdk.Metadata ||
			!own.OccurredAt.Equal(sdk.OccurredAt) || !sameJSON(own.Data, sdk.Data) {
			t.Fatalf("fast path and SDK differ:\n%+v\n%+v\n%s", own, sdk, msg)
		}
	})
}

// FuzzMarshalOwnShape holds the fast path of MarshalCloudEvent to the
// SDK's: whatever envelope a message decodes to, the event the fast path
// writes reads back through the SDK exactly as the SDK's own does.
func FuzzMarshalOwnShape(f *testing.F) {
	at := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)
	for i, ev := range carttest.MustStoredEvents(f) {
		e := envelope.Envelope{
			EventID: fmt.Sprintf("0195a3c0-0000-7000-8000-%012d", i+1), StreamID: "0195a3c0-0000-7000-8000-0000000000aa",
			StreamType: envelope.StreamTypeCart, Version: i + 1, Type: ev.Type, SchemaVersion: ev.SchemaVersion,
			Data: ev.Data, OccurredAt: at, Metadata: envelope.Metadata{Actor: "alice", TraceState: "a=<b>&c"},
		}
		b, err := envelope.MarshalSDKForTest(e, "urn:cart-cqrs:command")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "urn:cart-cqrs:command")
	}
	f.Fuzz(func(t *testing.T, msg []byte, source string) {
		e, err := envelope.UnmarshalCloudEvent(msg)
		if err != nil {
			return
		}
		own, ok := envelope.MarshalOwnForTest(e, source)
		if !ok {
			return
		}
		sdk, err := envelope.MarshalSDKForTest(e, source)
		if err != nil {
			t.Fatalf("fast path wrote what the SDK refuses (%v): %+v", err, e)
		}
		a, errA := envelope.UnmarshalSDKForTest(own)
		b, errB := envelope.UnmarshalSDKForTest(sdk)
		if errA != nil || errB != nil || a.EventID != b.EventID || a.StreamID != b.StreamID || a.Version != b.Version ||
			a.Type != b.Type || a.SchemaVersion != b.SchemaVersion || a.Metadata != b.Metadata ||
			!a.OccurredAt.Equal(b.OccurredAt) || !sameJSON(a.Data, b.Data) {
			t.Fatalf("fast path and SDK write different events (%v, %v):\n%s\n%s", errA, errB, own, sdk)
		}
		// The same attributes, too: none written empty where the SDK leaves
		// it out (the AsyncAPI document's patterns refuse an empty one).
		var ownAttrs, sdkAttrs map[string]json.RawMessage
		if json.Unmarshal(own, &ownAttrs) != nil || json.Unmarshal(sdk, &sdkAttrs) != nil || len(ownAttrs) != len(sdkAttrs) {
			t.Fatalf("fast path and SDK write different attributes:\n%s\n%s", own, sdk)
		}
		for name := range sdkAttrs {
			if _, ok := ownAttrs[name]; !ok {
				t.Fatalf("fast path leaves out %q:\n%s\n%s", name, own, sdk)
			}
		}
	})
}
