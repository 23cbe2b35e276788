package e2e_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// TestOldSchemaVersionsStayReadable stores a cart's history as the code before
// cart.item-added v2 wrote it (flat price fields, schema version 1), then
// keeps using the cart through the API: the command side, the projector and
// the stream's subscribers all see the same cart as if it had been written
// today.
func TestOldSchemaVersionsStayReadable(t *testing.T) {
	s := mustStart(t, options{})
	ctx := context.Background()
	who := customer("legacy")
	tok := token(t, who, "")
	cartID := uuid.NewString()
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, `INSERT INTO carts (cart_id, customer_id, status, version, created_at, updated_at) VALUES ($1, $2, 'open', 2, $3, $3)`, cartID, who, at); err != nil {
		t.Fatal(err)
	}
	for i, e := range []struct{ typ, data string }{
		{cart.TypeOpened, `{"customerId":"` + who + `"}`},
		{cart.TypeItemAdded, `{"productId":"123","name":"Espresso beans 1 kg","unitPrice":1899,"currency":"EUR","quantity":2}`},
	} {
		if _, err := tx.Exec(ctx, `WITH ins AS (
			INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
			VALUES ($1, $2, 'cart', $3, $4, 1, $5, '{"actor":"`+who+`"}', $6) RETURNING position)
			INSERT INTO outbox (position) SELECT position FROM ins`,
			uuid.NewString(), cartID, i+1, e.typ, e.data, at.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// The command side folds the old events to decide on a new one.
	res := s.command(t, tok, "/v1/carts/"+cartID+"/add-item", item("123", 1))
	if res.Version != 3 {
		t.Fatalf("add-item on the old cart: version %d, want 3", res.Version)
	}
	doc := s.awaitCart(t, tok, cartID, 3)
	want := []readmodel.Line{{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 3, LineTotal: 5697}}
	if !jsonEqual(doc.Lines, want) || doc.Total != 5697 {
		t.Fatalf("read model lines %+v, want %+v", doc.Lines, want)
	}
	if replayed, _ := s.replay(t, cartID); !jsonEqual(doc, replayed) {
		t.Fatalf("read model %+v\n!= replay %+v", doc, replayed)
	}

	// Subscribers get each event in the schema version it was stored with,
	// and can tell them apart by the schemaversion extension.
	s.assertAgree(t)
	versions := map[int]int{}
	for _, m := range s.streamMessages(t) {
		if m.StreamID != cartID || m.Type != cart.TypeItemAdded {
			continue
		}
		versions[m.Version] = m.SchemaVersion
		var data map[string]any
		if err := json.Unmarshal(m.Data, &data); err != nil {
			t.Fatal(err)
		}
		if _, nested := data["unitPrice"].(map[string]any); nested != (m.SchemaVersion == 2) {
			t.Errorf("v%d (schema %d) data %s", m.Version, m.SchemaVersion, m.Data)
		}
	}
	if versions[2] != 1 || versions[3] != 2 {
		t.Fatalf("schema versions by stream version: %v, want v2→1, v3→2", versions)
	}
}
