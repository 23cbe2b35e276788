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

// passingResults meets every target.
func passingResults(t *testing.T) Results {
	t.Helper()
	var lags []time.Duration
	for i := range 1000 {
		lags = append(lags, time.Duration(1000+i)*time.Microsecond) // 1 … 2 ms
	}
	return Results{
		Date:     time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Machine:  Machine{NProc: 2, CPU: "Test CPU", GoVersion: "go1.26", PGVersion: "15", PGSettings: map[string]string{"fsync": "on"}},
		Settings: Settings{Duration: 10 * time.Second, Warmup: 2 * time.Second, Clients: []int{1, 16}, LagRate: 1000, DrainEvents: 100_000},
		PGBench: []pgbench.Run{
			{Script: ScriptAppend, Clients: 1, TPS: 900}, {Script: ScriptAppend, Clients: 16, TPS: 3000},
			{Script: ScriptLoadAppend, Clients: 1, TPS: 800}, {Script: ScriptLoadAppend, Clients: 16, TPS: 2000},
		},
		Commands:     []load.Result{runOf(t, 1, load.OpAdd, 700, 2*time.Millisecond, 0), runOf(t, 16, load.OpAdd, 2100, 8*time.Millisecond, 0)},
		CommandsHalf: openRun(t, load.OpAdd, 1050, 3*time.Millisecond, 0),
		RawReads:     []load.Result{runOf(t, 1, load.OpRead, 5000, 200*time.Microsecond, 0), runOf(t, 16, load.OpRead, 10000, time.Millisecond, 0)},
		Reads:        []load.Result{runOf(t, 1, load.OpRead, 4500, 220*time.Microsecond, 0), runOf(t, 16, load.OpRead, 9000, time.Millisecond, 0)},
		ReadsHalf:    openRun(t, load.OpRead, 4500, 500*time.Microsecond, 0),
		Lag:          withLag(t, openRun(t, load.OpAdd, 1000, 2*time.Millisecond, 0), lags...),
		Drain:        &Drain{Events: 100_000, Seconds: 4, EventsPerSec: 25_000, CatchUpSeconds: 8, CatchUpPerSec: 12_500},
		Rebuild:      &Rebuild{Available: true, Events: 150_000, Carts: 15_000, Seconds: 1, EventsPerSec: 150_000, Line: "rebuilt 150000 events of 15000 carts in 1s (150000 events/s) into generation 2"},
		Memory: []ServiceMemory{
			{Service: ServiceCommand, Phase: PhaseLoad, Memory: procs.Memory{RSSKB: 30_000, HWMKB: 31_000}},
			{Service: ServiceProjector, Phase: PhaseLoad, Memory: procs.Memory{RSSKB: 20_000, HWMKB: 21_000}},
			{Service: ServiceQuery, Phase: PhaseLoad, Memory: procs.Memory{RSSKB: 20_000, HWMKB: 25_000}},
			{Service: ServiceCommand, Phase: PhaseBacklog, Memory: procs.Memory{RSSKB: 40_000, HWMKB: 42_000}},
		},
		Profile: &Profile{Source: "perf", Run: "commands, 16 clients", Flat: []string{"12.00% runtime.mallocgc"}, Cumulative: []string{"40.00% net/http.(*conn).serve"}},
	}
}
