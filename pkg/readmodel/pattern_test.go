package readmodel_test

import (
	"testing"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

func TestKeysPattern(t *testing.T) {
	for _, tc := range []struct {
		keys readmodel.Keys
		want string
	}{
		{readmodel.Keys{Prefix: "cart:", Generation: 2}, "cart:g2:*"},
		{readmodel.Keys{Prefix: `a*b?[c]\:`, Generation: 10}, `a\*b\?\[c\]\\:g10:*`},
	} {
		if got := tc.keys.Pattern(); got != tc.want {
			t.Errorf("Pattern() = %q, want %q", got, tc.want)
		}
	}
}
