package load

import (
	"maps"
	"slices"
	"testing"
)

func TestShopper(t *testing.T) {
	s := NewShopper("alice", "token")
	steps := []struct {
		act     Action
		version int
		want    map[string]int
	}{
		{Action{Op: OpOpen}, 1, map[string]int{}},
		{Action{Op: OpAdd, ProductID: "123", Quantity: 2}, 2, map[string]int{"123": 2}},
		{Action{Op: OpAdd, ProductID: "456", Quantity: 1}, 3, map[string]int{"123": 2, "456": 1}},
		{Action{Op: OpAdd, ProductID: "123", Quantity: 3}, 4, map[string]int{"123": 5, "456": 1}},
		{Action{Op: OpChange, ProductID: "456", Quantity: 4}, 5, map[string]int{"123": 5, "456": 4}},
		{Action{Op: OpRemove, ProductID: "123"}, 6, map[string]int{"456": 4}},
	}
	for _, st := range steps {
		s.Applied(st.act, "cart-1", st.version)
		if s.CartID != "cart-1" || s.Version != st.version || !maps.Equal(s.Lines, st.want) {
			t.Fatalf("after %+v: cart %q v%d lines %v, want cart-1 v%d %v", st.act, s.CartID, s.Version, s.Lines, st.version, st.want)
		}
	}
	if !slices.Equal(s.order, []string{"456"}) {
		t.Fatalf("order = %v, want the remaining line only", s.order)
	}

	t.Run("CheckoutClosesTheCart", func(t *testing.T) {
		s.Applied(Action{Op: OpCheckout}, "cart-1", 7)
		if s.CartID != "" || len(s.Lines) != 0 || len(s.order) != 0 || s.Stale() {
			t.Fatalf("after checkout: %+v; want no cart, so that the next op opens one", s)
		}
	})
	t.Run("FailureMakesItStaleUntilResynced", func(t *testing.T) {
		s.Applied(Action{Op: OpOpen}, "cart-2", 1)
		s.Applied(Action{Op: OpAdd, ProductID: "789", Quantity: 1}, "cart-2", 2)
		s.Failed()
		if s.CartID != "" || !s.Stale() || len(s.Lines) != 0 {
			t.Fatalf("after a failure: %+v; want no cart and stale", s)
		}
		s.Applied(Action{Op: OpOpen}, "cart-2", 3)
		s.Resynced([]string{"789", "101"}, []int{1, 7})
		if s.Stale() || !maps.Equal(s.Lines, map[string]int{"789": 1, "101": 7}) || !slices.Equal(s.order, []string{"789", "101"}) {
			t.Fatalf("after resync: %+v", s)
		}
	})
}
