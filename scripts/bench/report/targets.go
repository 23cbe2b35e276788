package report

import (
	"fmt"
	"slices"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// The product's performance targets.
const (
	TargetCommandVsPG   = 1.00   // durable command throughput / pgbench load+append tps
	TargetCommandP99Ms  = 10.0   // command p99 at half the best throughput
	TargetQueryVsRaw    = 0.80   // query throughput / bare echo+Redis handler
	TargetQueryP99Ms    = 2.0    // query p99 at half the best throughput
	TargetLagP50Ms      = 3.0    // visibility lag p50 at the lag rate
	TargetLagP99Ms      = 20.0   // visibility lag p99 at the lag rate
	TargetDrainPerSec   = 20_000 // relay drain of a backlog
	TargetRebuildPerSec = 100_000
	TargetRSSMB         = 50.0
)

// maxFailureRate: a latency measured over more failures than this proves
// nothing.
const maxFailureRate = 0.01

// Names the results use.
const (
	ScriptAppend     = "append"      // pgbench: event + outbox rows
	ScriptLoadAppend = "load+append" // pgbench: last version, then event + outbox rows

	PhaseLoad    = "load"    // memory during the HTTP runs
	PhaseBacklog = "backlog" // memory while draining and catching up

	ServiceCommand   = "command"
	ServiceProjector = "projector"
	ServiceQuery     = "query"
)

const (
	notMeasured = "not measured"
	unavailable = "not available"
	kbPerMB     = 1024
)

// Check is one target and how the run fared against it.
type Check struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	// Available is false when the run has no measurement for it.
	Available bool `json:"available"`
	Pass      bool `json:"pass"`
	// Miss says by how much a missed target was missed.
	Miss string `json:"miss,omitempty"`
}

// Verdict is PASS, FAIL or n/a.
func (c Check) Verdict() string {
	switch {
	case !c.Available:
		return "n/a"
	case c.Pass:
		return "PASS"
	default:
		return "FAIL"
	}
}

// Evaluate checks every target against the results.
func Evaluate(r Results) []Check {
	checks := []Check{
		commandThroughput(r),
		latencyCheck("Command p99 at half load (open loop)", r.CommandsHalf, commands, TargetCommandP99Ms, func(l load.Latency) float64 { return l.P99 }, "p99"),
		queryThroughput(r),
		latencyCheck("Query p99 at half load (open loop)", r.ReadsHalf, reads, TargetQueryP99Ms, func(l load.Latency) float64 { return l.P99 }, "p99"),
		latencyCheck(fmt.Sprintf("Visibility lag p50 at %.0f commands/s", r.Settings.LagRate), r.Lag, lag, TargetLagP50Ms, func(l load.Latency) float64 { return l.P50 }, "p50"),
		latencyCheck(fmt.Sprintf("Visibility lag p99 at %.0f commands/s", r.Settings.LagRate), r.Lag, lag, TargetLagP99Ms, func(l load.Latency) float64 { return l.P99 }, "p99"),
		drainCheck(r.Drain),
		rebuildCheck(r.Rebuild),
	}
	for _, svc := range []string{ServiceCommand, ServiceProjector, ServiceQuery} {
		checks = append(checks, memoryCheck(svc, r.Memory))
	}
	return checks
}

// Best is the run with the highest throughput of a series.
type Best struct {
	Clients    int
	Throughput float64
}

// BestPGBench is the best pgbench run of a script.
func BestPGBench(r Results, script string) (Best, bool) {
	var b Best
	for _, run := range r.PGBench {
		if run.Script == script && run.TPS > b.Throughput {
			b = Best{run.Clients, run.TPS}
		}
	}
	return b, b.Throughput > 0
}

// BestOf is the run of runs with the highest throughput of stats.
func BestOf(runs []load.Result, stats func(load.Result) load.Stats) (Best, bool) {
	var b Best
	for _, run := range runs {
		if t := stats(run).Throughput; t > b.Throughput {
			b = Best{run.Clients, t}
		}
	}
	return b, b.Throughput > 0
}

func commands(r load.Result) load.Stats { return r.Commands() }
func reads(r load.Result) load.Stats    { return r.Reads() }
func lag(r load.Result) load.Stats {
	if r.Lag == nil {
		return load.Stats{}
	}
	return *r.Lag
}

func commandThroughput(r Results) Check {
	c := Check{Name: "Durable command throughput vs PostgreSQL",
		Target: fmt.Sprintf("≥ %.0f%% of pgbench load+append tps (best client count each)", 100*TargetCommandVsPG)}
	pg, okPG := BestPGBench(r, ScriptLoadAppend)
	cmd, okCmd := BestOf(r.Commands, commands)
	if !okPG || !okCmd {
		c.Measured = notMeasured
		return c
	}
	return ratioCheck(c, cmd.Throughput/pg.Throughput, TargetCommandVsPG,
		fmt.Sprintf("%.0f commands/s (%d clients) vs %.0f tps (%d clients)", cmd.Throughput, cmd.Clients, pg.Throughput, pg.Clients))
}

func queryThroughput(r Results) Check {
	c := Check{Name: "Query throughput vs raw Redis read",
		Target: fmt.Sprintf("≥ %.0f%% of the bare echo + Redis GET handler (best client count each)", 100*TargetQueryVsRaw)}
	raw, okRaw := BestOf(r.RawReads, reads)
	q, okQ := BestOf(r.Reads, reads)
	if !okRaw || !okQ {
		c.Measured = notMeasured
		return c
	}
	return ratioCheck(c, q.Throughput/raw.Throughput, TargetQueryVsRaw,
		fmt.Sprintf("%.0f reads/s (%d clients) vs %.0f (%d clients)", q.Throughput, q.Clients, raw.Throughput, raw.Clients))
}

// ratioCheck passes when ratio reaches target; a miss is the shortfall in
// percentage points of the baseline.
func ratioCheck(c Check, ratio, target float64, detail string) Check {
	c.Available = true
	c.Measured = fmt.Sprintf("%.0f%%: %s", 100*ratio, detail)
	c.Pass = ratio >= target
	if !c.Pass {
		c.Miss = fmt.Sprintf("%.0f points short (%.0f%% of the target)", 100*(target-ratio), 100*ratio/target)
	}
	return c
}

// latencyCheck holds a percentile of a run's stats to a limit in
// milliseconds. A run whose requests mostly failed does not pass, whatever
// its successes' latency.
func latencyCheck(name string, run *load.Result, stats func(load.Result) load.Stats, limitMs float64,
	pct func(load.Latency) float64, pctName string) Check {
	c := Check{Name: name, Target: fmt.Sprintf("%s ≤ %g ms", pctName, limitMs)}
	if run == nil || stats(*run).OK == 0 {
		c.Measured = notMeasured
		return c
	}
	s := stats(*run)
	got := pct(s.Latency)
	c.Available = true
	c.Measured = fmt.Sprintf("%s %.2f ms over %d requests", pctName, got, s.OK)
	if run.Mode == load.Open {
		c.Measured += fmt.Sprintf(" at %.0f/s scheduled", run.Rate)
	}
	failRate := failureRate(s, run.NotSent)
	if failRate > 0 {
		c.Measured += fmt.Sprintf(", %.2f%% failed or not sent", 100*failRate)
	}
	c.Pass = got <= limitMs && failRate <= maxFailureRate
	switch {
	case got > limitMs:
		c.Miss = fmt.Sprintf("%.2f ms over (%.1f× the limit)", got-limitMs, got/limitMs)
	case !c.Pass:
		c.Miss = fmt.Sprintf("%.2f%% of the requests failed (at most %.0f%% allowed)", 100*failRate, 100*maxFailureRate)
	}
	return c
}

func failureRate(s load.Stats, notSent int64) float64 {
	total := s.OK + s.Failed + notSent
	if total == 0 {
		return 0
	}
	return float64(s.Failed+notSent) / float64(total)
}

func drainCheck(d *Drain) Check {
	c := Check{Name: "Relay drain of an outbox backlog", Target: fmt.Sprintf("≥ %d events/s", TargetDrainPerSec)}
	if d == nil || d.EventsPerSec == 0 {
		c.Measured = notMeasured
		return c
	}
	return rateCheck(c, d.EventsPerSec, TargetDrainPerSec, fmt.Sprintf("%.0f events/s (%d events)", d.EventsPerSec, d.Events))
}

func rebuildCheck(rb *Rebuild) Check {
	c := Check{Name: "Full read-model rebuild", Target: fmt.Sprintf("≥ %d events/s", TargetRebuildPerSec)}
	switch {
	case rb == nil:
		c.Measured = notMeasured
		return c
	case !rb.Available:
		c.Measured = unavailable
		return c
	}
	return rateCheck(c, rb.EventsPerSec, TargetRebuildPerSec, fmt.Sprintf("%.0f events/s (%d events of %d carts)", rb.EventsPerSec, rb.Events, rb.Carts))
}

func rateCheck(c Check, got, target float64, measured string) Check {
	c.Available, c.Measured = true, measured
	c.Pass = got >= target
	if !c.Pass {
		c.Miss = fmt.Sprintf("%.0f%% short (%.0f%% of the target)", 100*(1-got/target), 100*got/target)
	}
	return c
}

// memoryCheck holds a service's peak resident set, over every phase, to the
// limit.
func memoryCheck(service string, mem []ServiceMemory) Check {
	c := Check{Name: "Resident memory of " + service, Target: fmt.Sprintf("peak RSS ≤ %g MB", TargetRSSMB)}
	var (
		peak   int64
		phases []string
	)
	for _, m := range mem {
		if m.Service != service {
			continue
		}
		p := max(m.HWMKB, m.RSSKB)
		if p > peak {
			peak = p
		}
		phases = append(phases, m.Phase)
	}
	if peak == 0 {
		c.Measured = notMeasured
		return c
	}
	mb := float64(peak) / kbPerMB
	slices.Sort(phases)
	c.Available = true
	c.Measured = fmt.Sprintf("%.1f MB (VmHWM, phases: %v)", mb, phases)
	c.Pass = mb <= TargetRSSMB
	if !c.Pass {
		c.Miss = fmt.Sprintf("%.1f MB over (%.1f× the limit)", mb-TargetRSSMB, mb/TargetRSSMB)
	}
	return c
}
