package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoPostgres keeps the query service off the write side: it reads Redis
// only, so nothing it builds — or tests with — may link the PostgreSQL
// driver.
func TestNoPostgres(t *testing.T) {
	for _, args := range [][]string{
		{"list", "-deps", "./..."},
		{"list", "-deps", "-test", "./..."},
	} {
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		for pkg := range strings.Lines(string(out)) {
			if strings.Contains(pkg, "jackc/pgx") {
				t.Errorf("go %s: the query module depends on %s", strings.Join(args, " "), strings.TrimSpace(pkg))
			}
		}
	}
}
