package auth

import (
	"strings"
	"testing"
)

func TestValidSubject(t *testing.T) {
	for s, want := range map[string]bool{
		"alice": true, "ünïcødé-customer": true, strings.Repeat("x", MaxSubjectLen): true,
		"": false, "a\x00b": false, "tab\there": false, "new\nline": false, "\xff\xfe": false,
		strings.Repeat("x", MaxSubjectLen+1): false,
	} {
		if got := validSubject(s); got != want {
			t.Errorf("validSubject(%q) = %v, want %v", s, got, want)
		}
	}
}
