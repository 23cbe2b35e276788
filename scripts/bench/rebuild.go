package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/report"
)

const (
	// probeTimeout bounds `projector rebuild -h`: a projector without the
	// subcommand ignores it and starts serving instead, and is stopped.
	probeTimeout   = 10 * time.Second
	rebuildTimeout = 10 * time.Minute
)

// rebuild runs a full read-model rebuild with the projector binary, while
// the live projector keeps serving, and reads its rate from the last line
// it prints.
func (b *bench) rebuild(ctx context.Context, st *stack) error {
	// Another port than the live projector's, should the binary serve HTTP.
	env := st.env("PROJECTOR_ADDR=127.0.0.1:0")
	bin := st.binary(report.ServiceProjector)
	if ok, why := probeRebuild(ctx, bin, env); !ok {
		b.res.Rebuild = &report.Rebuild{Available: false}
		b.note("Full read-model rebuild not available: " + why)
		b.say("full rebuild: not available (%s)", why)
		return nil
	}
	b.say("full rebuild: projector rebuild -progress=false")
	rctx, cancel := context.WithTimeout(ctx, rebuildTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(rctx, bin, "rebuild", "-progress=false")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		return fmt.Errorf("projector rebuild: %w: %s", err, lastLine(stderr.String()))
	}
	line := lastLine(stdout.String())
	rb, err := parseRebuilt(line)
	if err != nil {
		return fmt.Errorf("projector rebuild: %w", err)
	}
	rb.Line = line
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rb.MaxRSSKB = ru.Maxrss // kilobytes on Linux
	}
	b.say("    %s (%.1f s wall clock here)", line, elapsed.Seconds())
	b.res.Rebuild = rb
	return nil
}

// probeRebuild asks the projector binary for its rebuild subcommand's
// usage: one that has it prints its flags (-progress among them) and exits.
func probeRebuild(ctx context.Context, bin string, env []string) (bool, string) {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(pctx, bin, "rebuild", "-h")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &out
	err := cmd.Run()
	switch {
	case pctx.Err() != nil:
		return false, "the projector binary has no rebuild subcommand: `projector rebuild -h` started the service instead of printing its usage"
	case strings.Contains(out.String(), "progress"):
		return true, ""
	case err != nil:
		return false, fmt.Sprintf("`projector rebuild -h` failed: %v: %s", err, lastLine(out.String()))
	default:
		return false, "`projector rebuild -h` does not mention -progress: " + lastLine(out.String())
	}
}

// rebuiltLine is the rebuild's contract for its last line:
// rebuilt <events> events of <carts> carts in <duration> (<events/s> events/s) into generation <g>
var rebuiltLine = regexp.MustCompile(`^documents: rebuilt (\d+) events of (\d+) carts in (\S+) \(([0-9.]+) events/s\) into generation (\d+)$`)

// parseRebuilt reads the rebuild's last line.
func parseRebuilt(line string) (*report.Rebuild, error) {
	m := rebuiltLine.FindStringSubmatch(line)
	if m == nil {
		return nil, fmt.Errorf("last line %q is not `rebuilt <events> events of <carts> carts in <duration> (<events/s> events/s) into generation <g>`", line)
	}
	events, errE := strconv.ParseInt(m[1], 10, 64)
	carts, errC := strconv.ParseInt(m[2], 10, 64)
	d, errD := time.ParseDuration(m[3])
	rate, errR := strconv.ParseFloat(m[4], 64)
	if err := errors.Join(errE, errC, errD, errR); err != nil {
		return nil, fmt.Errorf("last line %q: %w", line, err)
	}
	return &report.Rebuild{Available: true, Events: events, Carts: carts, Seconds: d.Seconds(), EventsPerSec: rate}, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
