package httpserver

import (
	"testing"

	"github.com/google/uuid"
)

func TestNewRequestID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || !saneRequestID.MatchString(id) {
			t.Fatalf("request id %q: version %v, variant %v, err %v", id, u.Version(), u.Variant(), err)
		}
		if seen[id] {
			t.Fatalf("request id %q made twice", id)
		}
		seen[id] = true
	}
}
