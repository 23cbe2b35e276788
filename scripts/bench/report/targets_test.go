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

func TestTargetJudge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		target  Target
		value   float64
		outcome Outcome
		miss    string
		ratio   float64
	}{
		{"OKHigherGoal", TargetCommands, 210, GoalMet, "", 1.05},
		{"OKHigherOnTheGoal", TargetCommands, 200, GoalMet, "", 1},
		{"FloorHeldHigher", TargetCommands, 150, FloorHeld, "goal missed by 50 points (75% of it)", 0.75},
		{"FloorMissedHigher", TargetCommands, 48, FloorMissed, "floor missed by 52 points (48% of it)", 0.24},
		{"OKLowerGoal", TargetCPU, 280, GoalMet, "", 280.0 / 300},
		{"FloorHeldLower", TargetCPU, 400, FloorHeld, "goal missed by 100 µs (1.33× it)", 400.0 / 300},
		{"OKLowerOnTheFloor", TargetCPU, 450, FloorHeld, "goal missed by 150 µs (1.50× it)", 1.5},
		{"FloorMissedLower", TargetCPU, 830, FloorMissed, "floor missed by 380 µs (1.84× it)", 830.0 / 300},
		{"FloorMissedRate", TargetDrain, 7775, FloorMissed, "floor missed by 12225 events/s (39% of it)", 0.311},
		{"FloorHeldRate", TargetRebuild, 160_000, FloorHeld, "goal missed by 90000 events/s (64% of it)", 0.64},
		{"FloorMissedMs", TargetLagP99, 93, FloorMissed, "floor missed by 68 ms (3.72× it)", 6.2},
		{"GoalIsFloorMemory", TargetRSS, 50.7, FloorMissed, "floor missed by 0.7 MB (1.01× it)", 1.014},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.target.Judge("x", tc.value, "detail")
			if c.Outcome != tc.outcome || c.Miss != tc.miss {
				t.Errorf("Judge(%v) = %s, %q; want %s, %q", tc.value, c.Outcome, c.Miss, tc.outcome, tc.miss)
			}
			if d := c.Ratio - tc.ratio; d > 0.001 || d < -0.001 {
				t.Errorf("ratio %.4f, want %.4f", c.Ratio, tc.ratio)
			}
			if !c.Available() {
				t.Error("a judged check is not available")
			}
		})
	}
	t.Run("Bounds", func(t *testing.T) {
		for target, want := range map[*Target][2]string{
			&TargetCommands: {"≥ 200%", "≥ 100%"},
			&TargetCPU:      {"≤ 300 µs", "≤ 450 µs"},
			&TargetLagP50:   {"≤ 3 ms", "≤ 5 ms"},
			&TargetQuery:    {"≥ 100%", "≥ 85%"},
			&TargetDrain:    {"≥ 25000 events/s", "≥ 20000 events/s"},
			&TargetRSS:      {"≤ 50 MB", "≤ 50 MB"},
		} {
			c := target.NotMeasured(target.Name, notMeasured)
			if c.Goal != want[0] || c.Floor != want[1] || c.Available() || c.Outcome != NoMeasure {
				t.Errorf("%s: %+v, want goal %q floor %q, not available", target.Name, c, want[0], want[1])
			}
		}
	})
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	t.Run("OKEveryGoalMet", func(t *testing.T) {
		checks := Evaluate(passingResults(t))
		if len(checks) != 12 {
			t.Fatalf("%d checks, want 12", len(checks))
		}
		for _, c := range checks {
			if c.Outcome != GoalMet || c.Miss != "" {
				t.Errorf("%s: %+v, want the goal met", c.Name, c)
			}
		}
		// The best of each series is compared: 4100 commands/s at 16 clients
		// against 2000 tps at 16 clients.
		if c := checkNamed(t, checks, "Durable commands"); !strings.HasPrefix(c.Measured, "205%: 4100 commands/s (16 clients) vs 2000 tps (16 clients)") {
			t.Errorf("measured %q", c.Measured)
		}
		if c := checkNamed(t, checks, "CPU per command"); c.Name != "CPU per command, every process summed (16 clients, closed loop)" || !strings.HasPrefix(c.Measured, "250 µs over 41000 commands") {
			t.Errorf("%q measured %q", c.Name, c.Measured)
		}
		if c := checkNamed(t, checks, "Idle visibility lag p50 at 50/s"); !strings.HasPrefix(c.Measured, "p50 1.50 ms") {
			t.Errorf("idle lag measured %q", c.Measured)
		}
		if c := checkNamed(t, checks, "Peak RSS of command"); !strings.HasPrefix(c.Measured, "41.0 MB") {
			t.Errorf("command memory %q: want the peak over both phases", c.Measured)
		}
	})

	t.Run("MissesSayByHowMuch", func(t *testing.T) {
		r := passingResults(t)
		r.Commands[1] = runOf(t, 16, load.OpAdd, 3000, 8*time.Millisecond, 0) // 150 % of 2000
		r.Usage[1] = usageOf(WindowClosed, 16, 0, 30_000, 0.83)
		r.Steps[2] = *withLag(t, openRun(t, load.OpAdd, 1000, 15*time.Millisecond, 0), 4*time.Millisecond, 30*time.Millisecond)
		r.Reads[1] = runOf(t, 16, load.OpRead, 8000, time.Millisecond, 0) // 80 % of 10000
		r.Drain.EventsPerSec = 21_000
		r.Memory[0].HWMKB = 80 * 1024
		checks := Evaluate(r)
		for prefix, want := range map[string]struct {
			outcome Outcome
			miss    string
		}{
			"Durable commands":                 {FloorHeld, "goal missed by 50 points (75% of it)"},
			"CPU per command":                  {FloorMissed, "floor missed by 380 µs (1.84× it)"},
			"Command p99 at 1000/s":            {FloorHeld, "goal missed by 5.01 ms (1.50× it)"},
			"Visibility lag p50 at 1000/s":     {FloorHeld, "goal missed by 1 ms (1.33× it)"},
			"Visibility lag p99 at 1000/s":     {FloorMissed, "floor missed by 5.02 ms (1.20× it)"},
			"Idle visibility lag p50 at 50/s":  {GoalMet, ""},
			"Query vs bare echo + Redis GET":   {FloorMissed, "floor missed by 5 points (94% of it)"},
			"Relay drain, projector running":   {FloorHeld, "goal missed by 4000 events/s (84% of it)"},
			"Peak RSS of command, every phase": {FloorMissed, "floor missed by 30 MB (1.60× it)"},
			"Peak RSS of query, every phase":   {GoalMet, ""},
		} {
			c := checkNamed(t, checks, prefix)
			if c.Outcome != want.outcome || c.Miss != want.miss {
				t.Errorf("%s: %s, %q; want %s, %q", prefix, c.Outcome, c.Miss, want.outcome, want.miss)
			}
		}
	})

	t.Run("FloorMissedOverFailures", func(t *testing.T) {
		r := passingResults(t)
		r.Steps[2] = *withLag(t, openRun(t, load.OpAdd, 1000, 2*time.Millisecond, 100), time.Millisecond) // 100 of 1100 failed
		c := checkNamed(t, Evaluate(r), "Command p99 at 1000/s")
		if c.Outcome != FloorMissed || !strings.Contains(c.Miss, "9.09% of the commands failed") {
			t.Fatalf("%+v: a fast p99 over 9%% failures must miss the floor", c)
		}
	})

	t.Run("NotMeasured", func(t *testing.T) {
		r := passingResults(t)
		r.Rebuild = &Rebuild{Available: false}
		r.PGBench = nil
		r.Steps = r.Steps[:1] // 50/s only
		r.Usage = nil
		r.Memory = []ServiceMemory{{Service: ServiceQuery, Phase: PhaseLoad, Memory: procs.Memory{HWMKB: 1024}}}
		checks := Evaluate(r)
		for _, prefix := range []string{"Full read-model rebuild", "Durable commands", "CPU per command", "Visibility lag p50 at 1000/s", "Peak RSS of command"} {
			if c := checkNamed(t, checks, prefix); c.Available() || c.Outcome != NoMeasure {
				t.Errorf("%s: %+v, want n/a", prefix, c)
			}
		}
		if c := checkNamed(t, checks, "Full read-model rebuild"); c.Measured != "not available" {
			t.Errorf("rebuild measured %q", c.Measured)
		}
		if c := checkNamed(t, checks, "Idle visibility lag"); !c.Available() {
			t.Errorf("idle lag: %+v, want it measured", c)
		}
	})

	t.Run("CPUOfTheMostClients", func(t *testing.T) {
		r := passingResults(t)
		r.Usage = append(r.Usage, usageOf(WindowClosed, 64, 0, 10_000, 0.5), usageOf(WindowClosed, 128, 0, 10_000, 0.9))
		if c := checkNamed(t, Evaluate(r), "CPU per command"); !strings.Contains(c.Name, "(64 clients") || !strings.HasPrefix(c.Measured, "500 µs") {
			t.Errorf("%q %q: want the 64-client run, as the issue measured it", c.Name, c.Measured)
		}
		r.Usage[len(r.Usage)-1].Processes[1].Measured = false // NATS
		r.Usage = r.Usage[:len(r.Usage)-2]
		r.Usage = append(r.Usage, usageOf(WindowClosed, 32, 0, 10_000, 0.9))
		r.Usage[len(r.Usage)-1].Processes[1] = ProcessCPU{Process: ProcNATS, Why: "not measured: not on this machine"}
		if c := checkNamed(t, Evaluate(r), "CPU per command"); !strings.Contains(c.Name, "(32 clients") || !strings.Contains(c.Measured, "without NATS: not measured") {
			t.Errorf("%q %q: want the most clients, saying what was not measured", c.Name, c.Measured)
		}
	})
}
