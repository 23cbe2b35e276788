package report

import (
	"fmt"
	"strings"
)

// Text renders the verdict for a terminal: one line per target, its result
// first, and by how much it was missed.
func Text(checks []Check) string {
	var b strings.Builder
	width := 0
	for _, c := range checks {
		width = max(width, len([]rune(c.Name)))
	}
	for _, c := range checks {
		fmt.Fprintf(&b, "%-4s  %-*s  %s  [goal: %s]", c.Verdict(), width, c.Name, c.Measured, c.Target)
		if c.Miss != "" {
			fmt.Fprintf(&b, "  MISSED: %s", c.Miss)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
