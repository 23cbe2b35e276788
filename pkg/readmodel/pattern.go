package readmodel

import (
	"fmt"
	"strings"
)

// Pattern is the SCAN MATCH pattern of every key of the generation: the
// cart documents, their histories and the customer index. Glob characters
// in the prefix are escaped, so a prefix never matches more than itself.
func (k Keys) Pattern() string {
	return fmt.Sprintf("%sg%d:*", EscapeGlob(k.Prefix), k.Generation)
}

// EscapeGlob escapes the characters Redis glob patterns (SCAN MATCH, KEYS)
// give a meaning to.
func EscapeGlob(s string) string {
	return globChars.Replace(s)
}

var globChars = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
