package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/report"
)

// profileLines is how many lines of each profile view the report keeps.
const profileLines = 25

// perfHz is perf's sampling rate: a few thousand samples over a run, at a
// cost the service does not notice.
const perfHz = 499

// profiler takes CPU profiles of a running service: from its
// /debug/pprof/profile when it serves one, else with perf (Go binaries keep
// frame pointers and symbols, so perf sees Go functions).
type profiler struct {
	work    string
	perf    string // perf binary; "" when there is none
	pprofOK bool   // the service serves /debug/pprof/profile
}

// newProfiler finds out how the service at baseURL can be profiled.
func newProfiler(ctx context.Context, work, baseURL string) profiler {
	p := profiler{work: work}
	if path, err := exec.LookPath("perf"); err == nil {
		p.perf = path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/debug/pprof/", nil)
	if err == nil {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close() // only the status matters
			p.pprofOK = resp.StatusCode == http.StatusOK
		}
	}
	return p
}

func (p profiler) available() bool { return p.pprofOK || p.perf != "" }

// capture profiles the service (pid, binary, baseURL) for d, starting after
// delay, and returns its top lines.
func (p profiler) capture(ctx context.Context, name string, pid int, binary, baseURL string, delay, d time.Duration) (*report.Profile, error) {
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	file := filepath.Join(p.work, slug(name)+".prof")
	if p.pprofOK {
		if err := fetchPprof(ctx, baseURL, file, d); err != nil {
			return nil, err
		}
		flat, errF := runTool(ctx, "go", "tool", "pprof", "-top", "-nodecount="+strconv.Itoa(profileLines), binary, file)
		cum, errC := runTool(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount="+strconv.Itoa(profileLines), binary, file)
		if err := errors.Join(errF, errC); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		return &report.Profile{Source: "pprof, /debug/pprof/profile", Run: name, Flat: pprofTop(flat), Cumulative: pprofTop(cum)}, nil
	}
	if p.perf == "" {
		return nil, errors.New("profile: no /debug/pprof on the service and no perf on the machine")
	}
	secs := strconv.Itoa(max(1, int(d.Seconds())))
	if _, err := runTool(ctx, p.perf, "record", "-F", strconv.Itoa(perfHz), "-g", "-p", strconv.Itoa(pid), "-o", file, "--", "sleep", secs); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	flat, errF := runTool(ctx, p.perf, "report", "-i", file, "--stdio", "--no-children", "--sort", "symbol", "-g", "none", "--percent-limit", "0.5")
	cum, errC := runTool(ctx, p.perf, "report", "-i", file, "--stdio", "--children", "--sort", "symbol", "-g", "none", "--percent-limit", "2")
	if err := errors.Join(errF, errC); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return &report.Profile{Source: fmt.Sprintf("perf record -F %d -g: %d samples per second of CPU", perfHz, perfHz), Run: name,
		Flat: perfTop(flat), Cumulative: perfTop(cum)}, nil
}

func fetchPprof(ctx context.Context, baseURL, file string, d time.Duration) (err error) {
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", baseURL, max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer func() { _ = resp.Body.Close() }() // read to the end below
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s answered %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("profile: %w", cerr)
		}
	}()
	if _, err := io.Copy(f, resp.Body); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// runTool runs a tool and returns its standard output.
func runTool(ctx context.Context, name string, args ...string) (string, error) {
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, args[0], err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

var (
	perfLine    = regexp.MustCompile(`^\s*\d+\.\d+%`)
	perfSamples = regexp.MustCompile(`^# (Samples: .*)$`)
)

// perfTop keeps the sample count and the sample lines of a perf report
// (they start with a percentage), without their indentation, at most
// profileLines of them.
func perfTop(out string) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() && len(lines) <= profileLines {
		if m := perfSamples.FindStringSubmatch(sc.Text()); m != nil {
			lines = append(lines, m[1])
			continue
		}
		if perfLine.MatchString(sc.Text()) {
			// -g none leaves empty call-chain columns ("- -") at the end.
			line := strings.Join(strings.Fields(sc.Text()), " ")
			lines = append(lines, strings.TrimSuffix(line, " - -"))
		}
	}
	return lines
}

// pprofTop keeps the table of `go tool pprof -top`: the header line and the
// lines below it, at most profileLines.
func pprofTop(out string) []string {
	var (
		lines []string
		in    bool
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() && len(lines) <= profileLines {
		line := sc.Text()
		if !in {
			if strings.Contains(line, "Showing nodes") {
				lines = append(lines, strings.TrimSpace(line))
			}
			in = strings.Contains(line, "flat%")
			if in {
				lines = append(lines, line)
			}
			continue
		}
		lines = append(lines, line)
	}
	return lines
}
