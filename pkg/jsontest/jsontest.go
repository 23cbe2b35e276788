// Package jsontest compares JSON documents in tests: PostgreSQL's jsonb, the
// CloudEvents on the stream and the documents in Redis need not agree on
// member order and spacing.
package jsontest

import (
	"encoding/json"
	"reflect"
)

// Equal reports whether a and b are valid JSON of the same value.
func Equal(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
