package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
)

// memStore is an in-memory httpapi.Carts for the fuzz target, which tests
// the HTTP decoding layer and not Redis (redisstore has its own tests
// against Redis). It holds what the projector writes — each cart's
// document with its version and owner beside it, and its history entries
// as JSON, in step — and records every call.
type memStore struct {
	mu      sync.Mutex
	docs    map[string]readmodel.Stored
	history map[string][][]byte
	open    map[string]string // customer → open cart id
	calls   []string
}

var _ httpapi.Carts = (*memStore)(nil)

// The carts of the fuzz target; fuzzT0 is when the first event happened,
// each next one a minute later.
const (
	qAliceCart   = "0195a3c0-0000-7000-8000-0000000000a1" // open, v4 (an item added with schema v1)
	qAliceOld    = "0195a3c0-0000-7000-8000-0000000000a0" // checked out, v3
	qBobCart     = "0195a3c0-0000-7000-8000-0000000000b1" // open, v1
	qUnknownCart = "0195a3c0-0000-7000-8000-0000000000ff"
)

var fuzzT0 = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// newMemStore projects the carts as the projector would.
func newMemStore() (*memStore, error) {
	m := &memStore{docs: map[string]readmodel.Stored{}, history: map[string][][]byte{}, open: map[string]string{}}
	espressoV1 := `{"productId":"123","name":"Espresso beans 1 kg","unitPrice":1899,"currency":"EUR","quantity":2}`
	mugV2 := `{"productId":"456","name":"Ceramic mug","unitPrice":{"amount":1250,"currency":"EUR"},"quantity":1}`
	type stored struct {
		typ    string
		schema int
		data   string
	}
	opened := func(customer string) stored { return stored{cart.TypeOpened, 1, `{"customerId":"` + customer + `"}`} }
	for id, evs := range map[string][]stored{
		qAliceCart: {opened("alice"), {cart.TypeItemAdded, 1, espressoV1}, {cart.TypeItemAdded, 2, mugV2},
			{cart.TypeQuantityChanged, 1, `{"productId":"456","oldQuantity":1,"newQuantity":3}`}},
		qAliceOld: {opened("alice"), {cart.TypeItemAdded, 2, mugV2},
			{cart.TypeCheckedOut, 1, `{"lines":[{"productId":"456","name":"Ceramic mug","unitPrice":1250,"currency":"EUR","quantity":1,"lineTotal":1250}],"itemCount":1,"total":1250,"currency":"EUR"}`}},
		qBobCart: {opened("bob")},
	} {
		s := cart.State{}
		for i, ev := range evs {
			e := envelope.Envelope{
				EventID: fmt.Sprintf("%s-%d", id, i+1), StreamID: id, StreamType: envelope.StreamTypeCart, Version: i + 1,
				Type: ev.typ, SchemaVersion: ev.schema, Data: json.RawMessage(ev.data),
				Metadata: envelope.Metadata{Actor: "alice"}, OccurredAt: fuzzT0.Add(time.Duration(i) * time.Minute),
			}
			r, err := e.Recorded()
			if err != nil {
				return nil, err
			}
			s = cart.Evolve(s, r)
			entry, err := json.Marshal(readmodel.NewHistoryEntry(e))
			if err != nil {
				return nil, err
			}
			m.history[id] = append(m.history[id], entry)
		}
		doc, err := json.Marshal(readmodel.FromState(s))
		if err != nil {
			return nil, err
		}
		m.docs[id] = readmodel.Stored{Doc: doc, Version: s.Version, Owner: s.CustomerID}
		if s.Status == cart.StatusOpen {
			m.open[s.CustomerID] = id
		}
	}
	return m, nil
}

func (m *memStore) record(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, fmt.Sprintf(format, args...))
}

// takeCalls returns the calls since the last takeCalls and forgets them.
func (m *memStore) takeCalls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.calls
	m.calls = nil
	return c
}

func (m *memStore) Cart(ctx context.Context, cartID string) (readmodel.Stored, bool, error) {
	m.record("Cart(%q)", cartID)
	doc, ok := m.docs[cartID]
	return doc, ok, nil
}

func (m *memStore) OpenCart(ctx context.Context, customerID string) (readmodel.Stored, bool, error) {
	m.record("OpenCart(%q)", customerID)
	id, ok := m.open[customerID]
	if !ok {
		return readmodel.Stored{}, false, nil
	}
	doc, ok := m.docs[id]
	return doc, ok, nil
}

func (m *memStore) History(ctx context.Context, cartID string) (readmodel.Stored, []readmodel.HistoryEntry, bool, error) {
	m.record("History(%q)", cartID)
	doc, ok := m.docs[cartID]
	if !ok {
		return readmodel.Stored{}, nil, false, nil
	}
	raw := m.history[cartID]
	entries := make([]readmodel.HistoryEntry, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &entries[i]); err != nil {
			return readmodel.Stored{}, nil, false, fmt.Errorf("mem: cart %s history entry %d: %w", cartID, i, err)
		}
	}
	return doc, entries, true, nil
}
