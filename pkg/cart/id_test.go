package cart_test

import (
	"testing"

	"github.com/cart-cqrs/cart/pkg/cart"
)

func TestCanonicalID(t *testing.T) {
	const id = "01a23c51-472a-7233-87f9-0a509b370b68"
	for in, want := range map[string]string{
		id:                                       id,
		"01A23C51-472A-7233-87F9-0A509B370B68":   id,
		"01a23C51-472a-7233-87F9-0a509b370B68":   id,
		"{01a23c51-472a-7233-87f9-0a509b370b68}": "",
		"urn:uuid:01a23c51-472a-7233-87f9-0a509b370b68": "",
		"01a23c51472a723387f90a509b370b68":              "",
		"01a23c51-472a-7233-87f9-0a509b370b6g":          "",
		"":                                              "",
	} {
		got, ok := cart.CanonicalID(in)
		if got != want || ok != (want != "") {
			t.Errorf("CanonicalID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
