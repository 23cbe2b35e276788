package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binaries are the paths of the three service executables.
type Binaries struct {
	Command, Projector, Query string
}

// packages are the main packages of the services, in the workspace.
var packages = []string{
	"github.com/cart-cqrs/cart/services/command",
	"github.com/cart-cqrs/cart/services/projector",
	"github.com/cart-cqrs/cart/services/query",
}

// Build compiles the three services into dir with go build, with the race
// detector when race is set (a race in a service under faults is a finding
// too). go build leaves an executable that is up to date alone, so a dir
// kept between runs costs a link only when the code changed. With
// CHAOS_BIN set it uses the executables already in that folder instead,
// e.g. bin/ after make build.
func Build(ctx context.Context, dir string, race bool) (Binaries, error) {
	if prebuilt := os.Getenv("CHAOS_BIN"); prebuilt != "" {
		abs, err := filepath.Abs(prebuilt)
		if err != nil {
			return Binaries{}, fmt.Errorf("chaos: CHAOS_BIN: %w", err)
		}
		dir = abs
	} else {
		args := []string{"build", "-trimpath", "-o", dir + string(filepath.Separator)}
		if race {
			args = append(args, "-race")
		}
		cmd := exec.CommandContext(ctx, "go", append(args, packages...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("chaos: go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	b := Binaries{
		Command:   filepath.Join(dir, "command"),
		Projector: filepath.Join(dir, "projector"),
		Query:     filepath.Join(dir, "query"),
	}
	for _, p := range []string{b.Command, b.Projector, b.Query} {
		if _, err := os.Stat(p); err != nil {
			return Binaries{}, fmt.Errorf("chaos: %w", err)
		}
	}
	return b, nil
}
