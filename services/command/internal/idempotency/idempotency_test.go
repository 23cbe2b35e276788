package idempotency_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{
		"a": true, "order-42/retry 1": true, strings.Repeat("~", 255): true,
		"": false, strings.Repeat("k", 256): false, "schlüssel": false, "tab\there": false, "nl\n": false,
	} {
		if got := idempotency.ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	type body struct {
		ProductID string `json:"productId"`
		Quantity  int    `json:"quantity"`
	}
	must := func(method, path string, b any) []byte {
		t.Helper()
		h, err := idempotency.Fingerprint(method, path, b)
		if err != nil || len(h) != 32 {
			t.Fatalf("Fingerprint = %x, %v", h, err)
		}
		return h
	}
	base := must("POST", "/v1/carts/x/add-item", body{"123", 1})
	if !bytes.Equal(base, must("POST", "/v1/carts/x/add-item", body{"123", 1})) {
		t.Error("the same request has two fingerprints")
	}
	for name, other := range map[string][]byte{
		"Method": must("PUT", "/v1/carts/x/add-item", body{"123", 1}),
		"Path":   must("POST", "/v1/carts/y/add-item", body{"123", 1}),
		"Body":   must("POST", "/v1/carts/x/add-item", body{"123", 2}),
		"Split":  must("POST/v1/carts/x/add-item", "", body{"123", 1}),
	} {
		if bytes.Equal(base, other) {
			t.Errorf("another %s, the same fingerprint", name)
		}
	}
}
