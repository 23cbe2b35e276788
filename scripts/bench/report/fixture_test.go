package report

import (
	"testing"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/pgbench"
	"github.com/cart-cqrs/cart/scripts/bench/procs"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// runOf builds a load result whose op got perSec successes over a one
// second window, all taking latency, plus failed failures.
func runOf(t *testing.T, clients int, op load.Op, perSec int, latency time.Duration, failed int) load.Result {
	t.Helper()
	rec := load.NewRecorder()
	for range perSec {
		rec.OK(op, latency)
	}
	for range failed {
		rec.Fail(op, "503 unavailable")
	}
	res, err := rec.Result(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res.Mode, res.Clients = load.Closed, clients
	return res
}

func openRun(t *testing.T, op load.Op, perSec int, latency time.Duration, failed int) *load.Result {
	t.Helper()
	res := runOf(t, 64, op, perSec, latency, failed)
	res.Mode, res.Rate = load.Open, float64(perSec)
	return &res
}

func withLag(t *testing.T, res *load.Result, latencies ...time.Duration) *load.Result {
	t.Helper()
	rec := load.NewRecorder()
	for _, d := range latencies {
		rec.Lag(d)
	}
	lagged, err := rec.Result(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res.Lag = lagged.Lag
	return res
}

// usageOf is a window of units that took perUnit CPU seconds each, spread
// over the system's processes (PostgreSQL a third of it).
func usageOf(kind string, clients int, rate float64, units int64, perUnitMs float64) Usage {
	total := float64(units) * perUnitMs / 1000
	u := Usage{Kind: kind, Clients: clients, Rate: rate, Attempt: 1, Seconds: 10, Units: units, Unit: "command",
		Postgres: &PGWork{Transactions: units, Calls: 3 * units, Counted: true, Statements: []Statement{{Query: "SELECT version FROM events WHERE stream_id = $1", Calls: units, ExecMs: float64(units) / 20}}}}
	if kind == WindowCatchUp {
		u.Unit = "event"
	}
	for _, p := range SystemProcesses {
		share := total * 2 / 15
		if p == ProcPostgres {
			share = total / 3
		}
		pc := ProcessCPU{Process: p, Seconds: share, Measured: true}
		if p == ProcPostgres {
			pc.Parts = map[string]float64{PartPGBackends: share * 3 / 4, PartPGShared: share / 4, PartPGExited: 0}
		}
		u.Processes = append(u.Processes, pc)
	}
	lg, outside := total/10, 0.5
	u.LoadGen, u.Outside = &lg, &outside
	return u
}

// idleUsage is 10 s of no load taking cpus CPUs, PostgreSQL a third.
func idleUsage(cpus float64) Usage {
	u := usageOf(WindowIdle, 0, 0, 10, 1000*cpus)
	u.Units, u.Unit, u.LoadGen = 0, "second", nil
	return u
}

// passingResults meets every goal.
func passingResults(t *testing.T) Results {
	t.Helper()
	var lags []time.Duration
	for i := range 1000 {
		lags = append(lags, time.Duration(1000+i)*time.Microsecond) // 1 … 2 ms
	}
	return Results{
		Date:    time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Machine: Machine{NProc: 2, CPU: "Test CPU", GoVersion: "go1.26", PGVersion: "15", PGSettings: map[string]string{"fsync": "on"}},
		Settings: Settings{Duration: 10 * time.Second, Warmup: 2 * time.Second, Clients: []int{1, 16}, LagRate: 1000, IdleRate: 50,
			Rates: []float64{50, 500, 1000, 2000}, DrainEvents: 100_000, Code: "commit abc1234"},
		PGBench: []pgbench.Run{
			{Script: ScriptAppend, Clients: 1, TPS: 900}, {Script: ScriptAppend, Clients: 16, TPS: 3000},
			{Script: ScriptLoadAppend, Clients: 1, TPS: 800}, {Script: ScriptLoadAppend, Clients: 16, TPS: 2000},
		},
		Commands:  []load.Result{runOf(t, 1, load.OpAdd, 700, 2*time.Millisecond, 0), runOf(t, 16, load.OpAdd, 4100, 8*time.Millisecond, 0)},
		RawReads:  []load.Result{runOf(t, 1, load.OpRead, 5000, 200*time.Microsecond, 0), runOf(t, 16, load.OpRead, 10000, time.Millisecond, 0)},
		Reads:     []load.Result{runOf(t, 1, load.OpRead, 4500, 220*time.Microsecond, 0), runOf(t, 16, load.OpRead, 10500, time.Millisecond, 0)},
		ReadsHalf: openRun(t, load.OpRead, 4500, 500*time.Microsecond, 0),
		Steps: []load.Result{
			*withLag(t, openRun(t, load.OpAdd, 50, 2*time.Millisecond, 0), lags...),
			*withLag(t, openRun(t, load.OpAdd, 500, 2*time.Millisecond, 0), lags...),
			*withLag(t, openRun(t, load.OpAdd, 1000, 2*time.Millisecond, 0), lags...),
			*withLag(t, openRun(t, load.OpAdd, 2000, 30*time.Millisecond, 0), lags...), // command p99 over 10 ms
			*withLag(t, openRun(t, load.OpAdd, 2000, 12*time.Millisecond, 0), lags...), // and again
		},
		Usage: []Usage{
			usageOf(WindowClosed, 1, 0, 700, 0.20),
			usageOf(WindowClosed, 16, 0, 41_000, 0.25),
			usageOf(WindowStep, 0, 50, 500, 0.40),
			usageOf(WindowStep, 0, 500, 5000, 0.30),
			usageOf(WindowStep, 0, 1000, 10_000, 0.28),
			usageOf(WindowCatchUp, 0, 0, 100_000, 0.05),
			idleUsage(0.3),
		},
		Drain:   &Drain{Events: 100_000, Seconds: 4, EventsPerSec: 25_000, CatchUpSeconds: 8, CatchUpPerSec: 12_500},
		Rebuild: &Rebuild{Available: true, Events: 250_000, Carts: 25_000, Seconds: 1, EventsPerSec: 250_000, Line: "rebuilt 250000 events of 25000 carts in 1s (250000 events/s) into generation 2"},
		Memory: []ServiceMemory{
			{Service: ServiceCommand, Phase: PhaseLoad, Memory: procs.Memory{RSSKB: 30_000, HWMKB: 31_000}},
			{Service: ServiceProjector, Phase: PhaseLoad, Memory: procs.Memory{RSSKB: 20_000, HWMKB: 21_000}},
			{Service: ServiceQuery, Phase: PhaseLoad, Memory: procs.Memory{RSSKB: 20_000, HWMKB: 25_000}},
			{Service: ServiceCommand, Phase: PhaseBacklog, Memory: procs.Memory{RSSKB: 40_000, HWMKB: 42_000}},
		},
		Profile: &Profile{Source: "perf", Run: "commands, 16 clients", Flat: []string{"12.00% runtime.mallocgc"}, Cumulative: []string{"40.00% net/http.(*conn).serve"}},
	}
}
