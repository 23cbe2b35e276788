package redisstore_test

import (
	"context"
	"testing"

	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
)

// The query service checks who may read a cart by the owner field alone,
// without decoding the document: every write of a document writes it.
func TestStore_OwnerBesideTheDocument(t *testing.T) {
	f := mustStore(t)
	s := opened("a", "alice", t0, 2)
	if err := f.save(t, documents.Write{CartID: "a", From: 0, State: s, Changed: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.save(t, documents.Write{CartID: "a", From: 2, State: checkedOut(s), Changed: true}); err != nil {
		t.Fatal(err)
	}
	got, err := f.env.Client.HGetAll(context.Background(), f.keys.Cart("a")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got[readmodel.FieldOwner] != "alice" || got[readmodel.FieldVersion] != "3" {
		t.Fatalf("cart hash = %v, want owner alice at version 3", got)
	}
}
