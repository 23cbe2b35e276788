package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/report"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// loadSpec is one run of the load generator.
type loadSpec struct {
	name     string // for the progress output and the file name
	scenario string
	mode     load.Mode
	clients  int
	rate     float64
	// commandURL and queryURL are the services driven; customers and
	// prefix the simulated customers (0: 8 per client; "": fresh ones).
	commandURL, queryURL string
	customers            int
	prefix               string
	synthetic            bool
	// marked, when set, is called as the measured window opens and closes,
	// with the load generator's pid.
	marked func(m load.Mark, pid int)
}

// runLoad runs bin/loadgen as its own process — its CPU is not the
// benchmark's — echoes its summary and returns its JSON result.
func (b *bench) runLoad(ctx context.Context, spec loadSpec) (load.Result, error) {
	b.seq++
	out := filepath.Join(b.work, fmt.Sprintf("%02d-%s.json", b.seq, slug(spec.name)))
	args := []string{
		"-scenario", spec.scenario, "-mode", string(spec.mode), "-clients", strconv.Itoa(spec.clients),
		"-duration", b.cfg.Duration.String(), "-warmup", b.cfg.Warmup.String(),
		"-command-url", spec.commandURL, "-query-url", spec.queryURL, "-json", out,
	}
	if spec.mode == load.Open {
		args = append(args, "-rate", strconv.FormatFloat(spec.rate, 'f', 1, 64))
	}
	if spec.customers > 0 {
		args = append(args, "-customers", strconv.Itoa(spec.customers))
	}
	prefix := spec.prefix
	if prefix == "" {
		prefix = fmt.Sprintf("bench-%s-%d", b.runID, b.seq)
	}
	args = append(args, "-customer-prefix", prefix)
	if spec.synthetic {
		args = append(args, "-synthetic")
	}
	if spec.marked != nil {
		args = append(args, "-marks")
	}
	b.say("%s", spec.name)
	cmd := exec.CommandContext(ctx, b.tool("loadgen"), args...)
	cmd.Env = append(baseEnv(),
		"AUTH_HS256_SECRET="+b.cfg.AuthSecret, "AUTH_ISSUER="+b.cfg.AuthIssuer, "AUTH_AUDIENCE="+b.cfg.AuthAudience)
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return load.Result{}, fmt.Errorf("%s: %w", spec.name, err)
	}
	if err := cmd.Start(); err != nil {
		return load.Result{}, fmt.Errorf("%s: start loadgen: %w", spec.name, err)
	}
	pid := cmd.Process.Pid
	indent(b.out, stdout, func(m load.Mark) { // until loadgen closes its stdout
		if spec.marked != nil {
			spec.marked(m, pid)
		}
	})
	if err := cmd.Wait(); err != nil {
		return load.Result{}, fmt.Errorf("%s: loadgen: %w", spec.name, err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return load.Result{}, fmt.Errorf("%s: %w", spec.name, err)
	}
	var res load.Result
	if err := json.Unmarshal(raw, &res); err != nil {
		return load.Result{}, fmt.Errorf("%s: result: %w", spec.name, err)
	}
	return res, nil
}

// failedRun notes a run that failed; the phase goes on with its next run.
func (b *bench) failedRun(err error) {
	b.note(err.Error())
	b.say("    FAILED: %v", err)
}

// indent copies r to w line by line, indented under the progress line,
// and hands the load generator's marks to marked as they come.
func indent(w io.Writer, r io.Reader, marked func(load.Mark)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m, ok := strings.CutPrefix(sc.Text(), load.MarkPrefix); ok {
			marked(load.Mark(m))
			continue
		}
		fmt.Fprintf(w, "    %s\n", sc.Text())
	}
}

// measuredLoad runs spec with the meter reading at each end of its
// measured window, and returns the window's usage: units are the window's
// commands (answered or failed).
func (b *bench) measuredLoad(ctx context.Context, m *meter, spec loadSpec, u report.Usage) (load.Result, report.Usage, error) {
	var start, end *reading
	spec.marked = func(mark load.Mark, pid int) {
		r := m.read(ctx, pid, mark == load.Measuring)
		switch mark {
		case load.Measuring:
			start = &r
		case load.Measured:
			end = &r
		}
	}
	res, err := b.runLoad(ctx, spec)
	if err != nil {
		return res, report.Usage{}, err
	}
	if start == nil || end == nil {
		return res, report.Usage{}, fmt.Errorf("%s: the load generator did not mark its measured window", spec.name)
	}
	cmd := res.Commands()
	w := usage(*start, *end, m.hz, u.Kind, cmd.OK+cmd.Failed, "command")
	w.Clients, w.Rate, w.Attempt = u.Clients, u.Rate, u.Attempt
	return res, w, nil
}

// slug makes a run's name a file name.
func slug(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}
