package report

import (
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/procs"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

func checkNamed(t *testing.T, checks []Check, prefix string) Check {
	t.Helper()
	for _, c := range checks {
		if strings.HasPrefix(c.Name, prefix) {
			return c
		}
	}
	t.Fatalf("no check named %q in %+v", prefix, checks)
	return Check{}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	t.Run("OKEveryTargetMet", func(t *testing.T) {
		checks := Evaluate(passingResults(t))
		if len(checks) != 11 {
			t.Fatalf("%d checks, want 11", len(checks))
		}
		for _, c := range checks {
			if !c.Available || !c.Pass || c.Miss != "" || c.Verdict() != "PASS" {
				t.Errorf("%s: %+v, want a pass", c.Name, c)
			}
		}
		// The best of each series is compared: 2100 commands/s at 16 clients
		// against 2000 tps at 16 clients.
		if c := checkNamed(t, checks, "Durable command throughput"); !strings.HasPrefix(c.Measured, "105%: 2100 commands/s (16 clients) vs 2000 tps (16 clients)") {
			t.Errorf("measured %q", c.Measured)
		}
		if c := checkNamed(t, checks, "Query throughput"); !strings.HasPrefix(c.Measured, "90%: 9000 reads/s (16 clients) vs 10000 (16 clients)") {
			t.Errorf("measured %q", c.Measured)
		}
		if c := checkNamed(t, checks, "Resident memory of command"); !strings.HasPrefix(c.Measured, "41.0 MB") {
			t.Errorf("command memory %q: want the peak over both phases", c.Measured)
		}
	})

	t.Run("FailMissesSayByHowMuch", func(t *testing.T) {
		r := passingResults(t)
		r.Commands[1] = runOf(t, 16, load.OpAdd, 1500, 8*time.Millisecond, 0) // 75 % of 2000
		r.CommandsHalf = openRun(t, load.OpAdd, 750, 25*time.Millisecond, 0)  // p99 25 ms
		r.Reads[1] = runOf(t, 16, load.OpRead, 6000, time.Millisecond, 0)     // 60 % of 10000
		r.Lag = withLag(t, openRun(t, load.OpAdd, 1000, 2*time.Millisecond, 0), 6*time.Millisecond)
		r.Drain.EventsPerSec = 5_000
		r.Memory[0].HWMKB = 80 * 1024
		checks := Evaluate(r)
		for prefix, miss := range map[string]string{
			"Durable command throughput": "25 points short (75% of the target)",
			"Command p99":                "15.0", // 25.0… − 10 ms
			"Query throughput":           "20 points short (75% of the target)",
			"Visibility lag p50":         "3.00 ms over (2.0× the limit)",
			"Visibility lag p99":         "", // 6 ms is within 20 ms
			"Relay drain":                "75% short (25% of the target)",
			"Resident memory of command": "30.0 MB over (1.6× the limit)",
		} {
			c := checkNamed(t, checks, prefix)
			if miss == "" {
				if !c.Pass {
					t.Errorf("%s: %+v, want a pass", prefix, c)
				}
				continue
			}
			if c.Pass || c.Verdict() != "FAIL" || !strings.HasPrefix(c.Miss, miss) {
				t.Errorf("%s: verdict %s, miss %q; want FAIL missed by %q…", prefix, c.Verdict(), c.Miss, miss)
			}
		}
	})

	t.Run("FailLatencyOverFailures", func(t *testing.T) {
		r := passingResults(t)
		r.ReadsHalf = openRun(t, load.OpRead, 4500, 500*time.Microsecond, 100) // 100 of 4600 failed
		c := checkNamed(t, Evaluate(r), "Query p99")
		if c.Pass || !strings.Contains(c.Miss, "2.17% of the requests failed") {
			t.Fatalf("%+v: a fast p99 over 2%% failures must not pass", c)
		}
	})

	t.Run("NotAvailable", func(t *testing.T) {
		r := passingResults(t)
		r.Rebuild = &Rebuild{Available: false}
		r.PGBench = nil
		r.Lag = nil
		r.Memory = []ServiceMemory{{Service: ServiceQuery, Phase: PhaseLoad, Memory: procs.Memory{HWMKB: 1024}}}
		checks := Evaluate(r)
		for _, prefix := range []string{"Full read-model rebuild", "Durable command throughput", "Visibility lag p50", "Resident memory of command"} {
			if c := checkNamed(t, checks, prefix); c.Available || c.Pass || c.Verdict() != "n/a" {
				t.Errorf("%s: %+v, want n/a", prefix, c)
			}
		}
		if c := checkNamed(t, checks, "Full read-model rebuild"); c.Measured != "not available" {
			t.Errorf("rebuild measured %q", c.Measured)
		}
	})
}
