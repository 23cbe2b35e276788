package e2e_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestLayering: the rules of the layout hold in what each package links —
// the command service links no Redis client; the projector's engine and its
// projections talk to Redis and PostgreSQL through ports only, their
// adapters (redisstore, postgres) at the edge; the command service's
// PostgreSQL adapter speaks no HTTP.
func TestLayering(t *testing.T) {
	const (
		mod      = "github.com/cart-cqrs/cart/"
		goRedis  = "github.com/redis/go-redis/v9"
		pgx      = "github.com/jackc/pgx/v5"
		echo     = "github.com/labstack/echo/v4"
		problems = mod + "pkg/problem"
	)
	for _, rule := range []struct {
		pkg    string
		forbid []string
	}{
		{mod + "services/command", []string{goRedis}},
		{mod + "services/command/internal/postgres", []string{echo, problems, mod + "services/command/internal/httpapi"}},
		{mod + "services/projector/internal/engine", []string{goRedis, pgx}},
		{mod + "services/projector/internal/documents", []string{goRedis, pgx}},
		{mod + "services/projector/internal/rebuild", []string{goRedis, pgx}},
		{mod + "services/projector/internal/analytics", []string{goRedis, pgx}},
	} {
		t.Run(strings.TrimPrefix(rule.pkg, mod), func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", rule.pkg).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", rule.pkg, err)
			}
			deps := strings.Fields(string(out))
			if !slices.Contains(deps, rule.pkg) {
				t.Fatalf("go list -deps %s does not list the package itself: %q", rule.pkg, deps)
			}
			for _, f := range rule.forbid {
				for _, d := range deps {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s links %s", rule.pkg, d)
						break
					}
				}
			}
		})
	}
}
