// Package pgbench runs PostgreSQL's pgbench with a custom script and reads
// its result: the raw write throughput a command service is held to.
package pgbench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// Options is one pgbench run.
type Options struct {
	// Path is the pgbench binary.
	Path string
	// DatabaseURL is a libpq connection URI.
	DatabaseURL string
	// Script is the custom script file (-f).
	Script string
	// Name labels the run in results.
	Name     string
	Clients  int
	Threads  int
	Duration time.Duration
	// Vars are set with -D before the run.
	Vars map[string]string
}

// Run is the outcome of one pgbench run.
type Run struct {
	Script       string  `json:"script"`
	Clients      int     `json:"clients"`
	Seconds      int     `json:"seconds"`
	Transactions int64   `json:"transactions"`
	Failed       int64   `json:"failed"`
	TPS          float64 `json:"tps"`
	LatencyMs    float64 `json:"latencyAvgMs"`
}

// Exec runs pgbench without vacuuming (-n: the tables are the cart's, not
// pgbench's) in prepared-statement mode, like pgx, and parses its report.
func Exec(ctx context.Context, o Options) (Run, error) {
	secs := max(1, int(o.Duration.Round(time.Second)/time.Second))
	args := []string{"-n", "-M", "prepared",
		"-c", strconv.Itoa(o.Clients), "-j", strconv.Itoa(max(1, min(o.Threads, o.Clients))),
		"-T", strconv.Itoa(secs), "-f", o.Script}
	for k, v := range o.Vars {
		args = append(args, "-D", k+"="+v)
	}
	args = append(args, o.DatabaseURL)
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, o.Path, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return Run{}, fmt.Errorf("pgbench %s with %d clients: %w: %s", o.Name, o.Clients, err, tail(errOut.Bytes()))
	}
	r, err := Parse(out.String())
	if err != nil {
		return Run{}, fmt.Errorf("pgbench %s with %d clients: %w", o.Name, o.Clients, err)
	}
	r.Script, r.Clients, r.Seconds = o.Name, o.Clients, secs
	return r, nil
}

var (
	reProcessed = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	reFailed    = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	reLatency   = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	reTPS       = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
)

// Parse reads pgbench's (PostgreSQL 14+) summary. The failed count is absent
// from older versions and then zero.
func Parse(out string) (Run, error) {
	var r Run
	m := reProcessed.FindStringSubmatch(out)
	if m == nil {
		return Run{}, fmt.Errorf("no transaction count in pgbench's output: %s", tail([]byte(out)))
	}
	r.Transactions, _ = strconv.ParseInt(m[1], 10, 64) // \d+ always parses
	if m := reFailed.FindStringSubmatch(out); m != nil {
		r.Failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	m = reTPS.FindStringSubmatch(out)
	if m == nil {
		return Run{}, fmt.Errorf("no tps in pgbench's output: %s", tail([]byte(out)))
	}
	var err error
	if r.TPS, err = strconv.ParseFloat(m[1], 64); err != nil {
		return Run{}, fmt.Errorf("tps %q: %w", m[1], err)
	}
	if m := reLatency.FindStringSubmatch(out); m != nil {
		if r.LatencyMs, err = strconv.ParseFloat(m[1], 64); err != nil {
			return Run{}, fmt.Errorf("latency %q: %w", m[1], err)
		}
	}
	return r, nil
}

// tail keeps the end of a long output for an error message.
func tail(b []byte) string {
	const keep = 800
	b = bytes.TrimSpace(b)
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}
