package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// Target is one of the speed issue's targets: a goal, and the floor that
// must hold before the work is called done.
type Target struct {
	Name        string
	Goal, Floor float64
	// Higher: more is better (throughput); else less is (CPU, latency,
	// memory).
	Higher bool
	Unit   string // "%", "µs", "ms", "events/s", "MB"
}

// The targets (issue 10, "How it is measured").
var (
	TargetCommands   = Target{Name: "Durable commands vs pgbench load+append", Goal: 200, Floor: 100, Higher: true, Unit: "%"}
	TargetCPU        = Target{Name: "CPU per command, every process summed", Goal: 300, Floor: 450, Unit: "µs"}
	TargetCommandP99 = Target{Name: "Command p99 at %.0f/s (open loop)", Goal: 10, Floor: 20, Unit: "ms"}
	TargetLagP50     = Target{Name: "Visibility lag p50 at %.0f/s", Goal: 3, Floor: 5, Unit: "ms"}
	TargetLagP99     = Target{Name: "Visibility lag p99 at %.0f/s", Goal: 15, Floor: 25, Unit: "ms"}
	TargetIdleLagP50 = Target{Name: "Idle visibility lag p50 at %.0f/s", Goal: 2, Floor: 3, Unit: "ms"}
	TargetQuery      = Target{Name: "Query vs bare echo + Redis GET", Goal: 100, Floor: 85, Higher: true, Unit: "%"}
	TargetDrain      = Target{Name: "Relay drain, projector running", Goal: 25_000, Floor: 20_000, Higher: true, Unit: "events/s"}
	TargetRebuild    = Target{Name: "Full read-model rebuild", Goal: 250_000, Floor: 150_000, Higher: true, Unit: "events/s"}
	TargetRSS        = Target{Name: "Peak RSS of %s, every phase", Goal: 50, Floor: 50, Unit: "MB"}
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

// Outcome is how a measurement fared against its target.
type Outcome string

const (
	GoalMet     Outcome = "goal met"
	FloorHeld   Outcome = "floor held"
	FloorMissed Outcome = "floor missed"
	NoMeasure   Outcome = "n/a"
)

// Check is one target and how the run fared against it.
type Check struct {
	Name string `json:"name"`
	// Goal and Floor are the target's, as text ("≥ 200%").
	Goal     string `json:"goal"`
	Floor    string `json:"floor"`
	Measured string `json:"measured"`
	// Ratio is the measured value over the goal.
	Ratio   float64 `json:"ratio"`
	Outcome Outcome `json:"outcome"`
	// Miss says by how much the goal, or the floor, was missed.
	Miss string `json:"miss,omitempty"`
}

// Available reports a check that has a measurement.
func (c Check) Available() bool { return c.Outcome != NoMeasure }

// Judge holds value to the target; detail says what was measured.
func (t Target) Judge(name string, value float64, detail string) Check {
	c := Check{Name: name, Goal: t.bound(t.Goal), Floor: t.bound(t.Floor), Measured: detail}
	if t.Goal != 0 {
		c.Ratio = value / t.Goal
	}
	better := func(limit float64) bool {
		if t.Higher {
			return value >= limit
		}
		return value <= limit
	}
	switch {
	case better(t.Goal):
		c.Outcome = GoalMet
	case better(t.Floor):
		c.Outcome, c.Miss = FloorHeld, "goal missed by "+t.miss(value, t.Goal)
	default:
		c.Outcome, c.Miss = FloorMissed, "floor missed by "+t.miss(value, t.Floor)
	}
	return c
}

// NotMeasured is the check of a target the run has no value for.
func (t Target) NotMeasured(name, why string) Check {
	return Check{Name: name, Goal: t.bound(t.Goal), Floor: t.bound(t.Floor), Measured: why, Outcome: NoMeasure}
}

func (t Target) bound(v float64) string {
	op := "≤"
	if t.Higher {
		op = "≥"
	}
	return op + " " + t.value(v)
}

func (t Target) value(v float64) string {
	switch t.Unit {
	case "%":
		return fmt.Sprintf("%.0f%%", v)
	case "ms", "MB":
		return strconv.FormatFloat(roundTo3(v), 'f', -1, 64) + " " + t.Unit
	default:
		return fmt.Sprintf("%.0f %s", v, t.Unit)
	}
}

// roundTo3 keeps three significant digits, and no fraction beyond them:
// 5.014 → 5.01, 3244.03 → 3244.
func roundTo3(v float64) float64 {
	if v == 0 {
		return 0
	}
	decimals := max(0, 2-int(math.Floor(math.Log10(math.Abs(v)))))
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// miss is how far value is from limit: the shortfall and the ratio.
func (t Target) miss(value, limit float64) string {
	if t.Higher {
		if t.Unit == "%" {
			return fmt.Sprintf("%.0f points (%.0f%% of it)", limit-value, 100*value/limit)
		}
		return fmt.Sprintf("%s (%.0f%% of it)", t.value(limit-value), 100*value/limit)
	}
	return fmt.Sprintf("%s (%.2f× it)", t.value(value-limit), value/limit)
}

// Evaluate checks every target against the results.
func Evaluate(r Results) []Check {
	lagRate, idleRate := r.Settings.LagRate, r.Settings.IdleRate
	checks := []Check{
		commandThroughput(r),
		cpuPerCommand(r),
		stepCheck(TargetCommandP99, r, lagRate, commands, func(l load.Latency) float64 { return l.P99 }, "p99"),
		stepCheck(TargetLagP50, r, lagRate, lag, func(l load.Latency) float64 { return l.P50 }, "p50"),
		stepCheck(TargetLagP99, r, lagRate, lag, func(l load.Latency) float64 { return l.P99 }, "p99"),
		stepCheck(TargetIdleLagP50, r, idleRate, lag, func(l load.Latency) float64 { return l.P50 }, "p50"),
		queryThroughput(r),
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
	t := TargetCommands
	pg, okPG := BestPGBench(r, ScriptLoadAppend)
	cmd, okCmd := BestOf(r.Commands, commands)
	if !okPG || !okCmd {
		return t.NotMeasured(t.Name, notMeasured)
	}
	ratio := 100 * cmd.Throughput / pg.Throughput
	return t.Judge(t.Name, ratio, fmt.Sprintf("%.0f%%: %.0f commands/s (%d clients) vs %.0f tps (%d clients)",
		ratio, cmd.Throughput, cmd.Clients, pg.Throughput, pg.Clients))
}

func cpuPerCommand(r Results) Check {
	t := TargetCPU
	u, ok := CPUPerCommandRun(r)
	if !ok || u.Units == 0 {
		return t.NotMeasured(t.Name, notMeasured)
	}
	name := fmt.Sprintf("%s (%d clients, closed loop)", t.Name, u.Clients)
	v := u.PerUnit(u.System())
	detail := fmt.Sprintf("%.0f µs over %d commands", v, u.Units)
	if missing := unmeasured(u); len(missing) > 0 {
		detail += " (without " + strings.Join(missing, ", ") + ": not measured)"
	}
	return t.Judge(name, v, detail)
}

func unmeasured(u Usage) []string {
	var out []string
	for _, p := range u.Processes {
		if !p.Measured {
			out = append(out, p.Process)
		}
	}
	return out
}

func queryThroughput(r Results) Check {
	t := TargetQuery
	raw, okRaw := BestOf(r.RawReads, reads)
	q, okQ := BestOf(r.Reads, reads)
	if !okRaw || !okQ {
		return t.NotMeasured(t.Name, notMeasured)
	}
	ratio := 100 * q.Throughput / raw.Throughput
	return t.Judge(t.Name, ratio, fmt.Sprintf("%.0f%%: %.0f reads/s (%d clients) vs %.0f (%d clients)",
		ratio, q.Throughput, q.Clients, raw.Throughput, raw.Clients))
}

// stepCheck holds a percentile of the step at rate to its target. A step
// whose requests failed beyond maxFailureRate misses the floor whatever
// its successes' latency.
func stepCheck(t Target, r Results, rate float64, stats func(load.Result) load.Stats,
	pct func(load.Latency) float64, pctName string) Check {
	name := fmt.Sprintf(t.Name, rate)
	run, ok := StepAt(r.Steps, rate)
	if !ok || stats(run).OK == 0 {
		return t.NotMeasured(name, notMeasured)
	}
	s := stats(run)
	got := pct(s.Latency)
	detail := fmt.Sprintf("%s %.2f ms over %d", pctName, got, s.OK)
	c := t.Judge(name, got, detail)
	cmd := run.Commands()
	if fr := failureRate(cmd, run.NotSent); fr > maxFailureRate {
		c.Measured += fmt.Sprintf(", %.2f%% of the commands failed or not sent", 100*fr)
		c.Outcome, c.Miss = FloorMissed, fmt.Sprintf("%.2f%% of the commands failed or were not sent (at most %.0f%% allowed)", 100*fr, 100*maxFailureRate)
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
	t := TargetDrain
	if d == nil || d.EventsPerSec == 0 {
		return t.NotMeasured(t.Name, notMeasured)
	}
	return t.Judge(t.Name, d.EventsPerSec, fmt.Sprintf("%.0f events/s (%d events)", d.EventsPerSec, d.Events))
}

func rebuildCheck(rb *Rebuild) Check {
	t := TargetRebuild
	switch {
	case rb == nil:
		return t.NotMeasured(t.Name, notMeasured)
	case !rb.Available:
		return t.NotMeasured(t.Name, unavailable)
	}
	return t.Judge(t.Name, rb.EventsPerSec, fmt.Sprintf("%.0f events/s (%d events of %d carts)", rb.EventsPerSec, rb.Events, rb.Carts))
}

// memoryCheck holds a service's peak resident set, over every phase, to the
// limit.
func memoryCheck(service string, mem []ServiceMemory) Check {
	t := TargetRSS
	name := fmt.Sprintf(t.Name, service)
	var (
		peak   int64
		phases []string
	)
	for _, m := range mem {
		if m.Service != service {
			continue
		}
		peak = max(peak, m.HWMKB, m.RSSKB)
		phases = append(phases, m.Phase)
	}
	if peak == 0 {
		return t.NotMeasured(name, notMeasured)
	}
	mb := float64(peak) / kbPerMB
	slices.Sort(phases)
	return t.Judge(name, mb, fmt.Sprintf("%.1f MB (VmHWM, phases: %s)", mb, strings.Join(phases, ", ")))
}
