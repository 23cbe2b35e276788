package report

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

func TestMarkdown(t *testing.T) {
	t.Parallel()
	r := passingResults(t)
	r.Commands[1] = runOf(t, 16, load.OpAdd, 3000, 8*time.Millisecond, 0)
	r.Rebuild = &Rebuild{Available: false}
	r.Notes = []string{"projector rebuild: not available in this build"}
	r.Machine.LoadBefore, r.Machine.LoadAfter = "8.38 7.95 6.65", "1.00 0.90 0.80"
	r.Machine.OutsideBefore = 0.9
	r.Machine.PGStatStatements = "**PostgreSQL statements are not counted**: pg_stat_statements is not loaded"
	before := passingResults(t)
	before.Settings.Code = "commit cc4ca33"
	before.Usage = []Usage{before.Usage[0], usageOf(WindowClosed, 16, 0, 20_000, 0.83), idleUsage(0.72)}
	before.Steps = before.Steps[:2] // 1000/s and up failed
	before.Steps = append(before.Steps, step(t, 1000, 600*time.Millisecond, 0, 60*time.Millisecond))
	r.Usage[0].Processes[2].OtherClients = 4 // Redis, 1 client
	checks := Evaluate(r)
	md := Markdown(r, &before, checks, []string{PlotWrites, PlotLagCDF, PlotRates})

	for _, want := range []string{
		"# Cart CQRS benchmark",
		"2025-03-01 12:00 UTC from commit abc1234",
		"| CPUs | 2 × Test CPU |",
		"| other work on the machine | 0.90 CPUs before the start; 0.05 CPUs on average over the measured windows (0.05 CPUs in the busiest) |",
		"**The machine was busy with other work while this ran** (0.90 CPUs before the start, 0.05 CPUs on average while measuring, on 2 CPUs)",
		"| PostgreSQL settings | fsync=on |",
		// The headline: the sustainable rate and the CPU per command, now and before.
		"| **sustainable rate**: the highest open-loop command rate with every command answered on schedule (p99 ≤ 10 ms, none failed or unsent) and visible with lag p99 ≤ 25 ms | **1000 commands/s** | 500 commands/s |",
		"| **CPU per command**, every process of the system summed (closed loop, most clients) | **250 µs (16 clients)** | 830 µs (16 clients) |",
		// The verdict: goal, floor, ratio, and how far a miss was.
		"| Durable commands vs pgbench load+append | ≥ 200% [100%] | 150%: 3000 commands/s (16 clients) vs 2000 tps (16 clients) | 0.75× | floor held: goal missed by 50 points (75% of it) |",
		"| CPU per command, every process summed (16 clients, closed loop) | ≤ 300 µs [450 µs] | 250 µs over 41000 commands | 0.83× | goal met |",
		"| Full read-model rebuild | ≥ 250000 events/s [150000 events/s] | not available | – | n/a |",
		// CPU per command: a row per process, a column per client count and before.
		"| µs per command | 1 client | 16 clients | before: 16 clients |",
		"| PostgreSQL | 67 | 83 | 277 |",
		"| … of it, its backends of the benchmark's database | 50 | 62 | 208 |",
		"| … of it, shared processes: WAL writer, checkpointer, … | 17 | 21 | 69 |",
		"| **total** | **200** | **250** | **830** |",
		"| load generator (not in the total) | 20 | 25 | 83 |",
		"| transactions | 1.00 | 1.00 | 1.00 | 1.00 |",
		"* Redis: the server is shared, and up to 4 clients that are not the system's were active in a window: their work is counted too.",
		// Idle: % of a CPU, now and before.
		"| process | idle | before |",
		"| PostgreSQL | 10.0% | 24.0% |",
		"| **total** | **30.0%** | **72.0%** |",
		"| 1.00 | 50 | `SELECT version FROM events WHERE stream_id = $1` |",
		"pg_stat_statements is not loaded",
		// The steps, a row per attempt.
		"| 2000 | 64 | 30.02 | 30.02 | 1.50 | 1.99 | 0 | 0 | – | fail: command p99 30.0 ms > 10 ms |",
		"| 2000 (again) | 64 | 12.01 | 12.01 | 1.50 | 1.99 | 0 | 0 | – | fail: command p99 12.0 ms > 10 ms |",
		"| 1000 | 64 | 2.00 | 2.00 | 1.50 | 1.99 | 0 | 0 | 280 | pass |",
		"**Sustainable rate: 1000 commands/s**",
		// Before and after.
		"| **total** | 830 | 250 | -70% | – | 280 | – |",
		"| sustainable rate | 500 commands/s | 1000 commands/s |",
		"| lag p50 / p99 at 1000/s | 60.03 / 60.03 ms | 1.50 / 1.99 ms |",
		"| command p50 / p99 at 1000/s | 600.06 / 600.06 ms | 2.00 / 2.00 ms |",
		// The lag at the targets' rates.
		"| 50 | 1.50 | 1.90 | 1.99 | 2.00 | 2.00 | 1000 | 2.00 | 2.00 |",
		"| 16 | 3000 | 2000 | 3000 | 150% | 8.00 | 8.00 | 0 |",
		"| 1 | 5000 | 0.20 | 0.20 | 4500 | 90% | 0.22 | 0.22 |",
		"| relay drain | **25000 events/s** (4.00 s from the first to the last row published) |",
		"| µs per event | relay drain | drain + projector catch-up |",
		"`projector rebuild` is not available in this build",
		"| command | backlog | 41.0 | 39.1 |",
		"12.00% runtime.mallocgc",
		"* projector rebuild: not available in this build",
		`BENCH_CLIENTS="1 16" BENCH_RATES="50 500 1000 2000"`,
		"![throughput vs clients, writes](writes_throughput.png)",
		"![visibility lag CDF](lag_cdf.png)",
		"![latency and lag against the open-loop rate](rates.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	r.Machine.OutsideBefore = 0.1
	if quiet := Markdown(r, nil, checks, nil); strings.Contains(quiet, "busy with other work") || !strings.Contains(quiet, "No results of the code before the speed work") {
		t.Error("a quiet machine is called busy, or a missing before is not said")
	}
	if strings.Contains(md, "children that exited") {
		t.Error("a row for exited children that used no CPU")
	}
	// A plot that was not drawn is not linked.
	if strings.Contains(md, PlotReads) {
		t.Error("the report links a plot that was not drawn")
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestMarkdownNotMeasured(t *testing.T) {
	t.Parallel()
	r := passingResults(t)
	for i := range r.Usage {
		r.Usage[i].Processes[1] = ProcessCPU{Process: ProcNATS, Why: "not measured: nats.example:4222 is not on this machine"}
	}
	md := Markdown(r, nil, Evaluate(r), nil)
	for _, want := range []string{
		"| NATS | not measured | not measured |",
		"| **total** | **173** (incomplete) | **217** (incomplete) |",
		"* NATS: not measured: nats.example:4222 is not on this machine",
		"217 µs over 41000 commands (without NATS: not measured)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestBusy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		before  float64
		outside []float64 // CPU seconds of other work per 10 s window
		busy    bool
	}{
		{"OKQuiet", 0.05, []float64{0.3, 0.5}, false},
		{"OKBeforeUnknown", -1, []float64{0.3}, false},
		{"BusyBefore", 0.5, []float64{0.3}, true},
		{"BusyDuring", 0.05, []float64{1, 5, 1}, true}, // 7 s of 30 s: 0.23 CPUs of 2
		{"OKOneBusyWindowOfMany", 0.05, []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 3.5}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Results{Machine: Machine{NProc: 2, OutsideBefore: tc.before}}
			for _, o := range tc.outside {
				r.Usage = append(r.Usage, Usage{Seconds: 10, Outside: &o})
			}
			if got := Busy(r); got != tc.busy {
				t.Fatalf("Busy = %v, want %v", got, tc.busy)
			}
		})
	}
}

func TestPlots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	drawn, err := Plots(passingResults(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{PlotWrites, PlotReads, PlotLatency, PlotLagCDF, PlotRates}
	if !slices.Equal(drawn, want) {
		t.Fatalf("drew %v, want %v", drawn, want)
	}
	for _, name := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 5000 {
			t.Errorf("%s is not a drawn PNG (%d bytes)", name, len(b))
		}
	}

	t.Run("OKOnePointEach", func(t *testing.T) {
		r := passingResults(t)
		r.Settings.Clients, r.Settings.Rates = []int{1}, []float64{50}
		r.Commands, r.Reads, r.RawReads, r.Steps = r.Commands[:1], r.Reads[:1], r.RawReads[:1], r.Steps[:1]
		r.PGBench = r.PGBench[:1]
		r.Settings.LagRate = 100
		drawn, err := Plots(r, t.TempDir())
		if err != nil || len(drawn) != 5 {
			t.Fatalf("Plots of one point each drew %v, %v", drawn, err)
		}
	})
	t.Run("OKWithoutData", func(t *testing.T) {
		drawn, err := Plots(Results{Settings: Settings{Clients: []int{1, 4}}}, t.TempDir())
		if err != nil || len(drawn) != 0 {
			t.Fatalf("Plots of nothing drew %v, %v", drawn, err)
		}
	})
}

func TestQuantileGrid(t *testing.T) {
	t.Parallel()
	if QuantileGrid(0) != nil {
		t.Error("a grid for no values")
	}
	for _, n := range []int64{1, 10, 1000, 123_456} {
		qs := QuantileGrid(n)
		if !slices.IsSorted(qs) || qs[0] != 0 || qs[len(qs)-1] >= 100 {
			t.Fatalf("grid for %d values is not increasing within [0, 100): %v", n, qs)
		}
		// The tail reaches the finest percentile n values resolve, no further.
		if last, finest := qs[len(qs)-1], 100*(1-1/float64(n)); n >= 10 && (last > finest+1e-9 || last < 100*(1-1.26/float64(n))) {
			t.Errorf("grid for %d values ends at %v, want about %v", n, last, finest)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	r := passingResults(t)
	r.Drain.EventsPerSec = 5000
	got := Text(Evaluate(r))
	if lines := strings.Count(got, "\n"); lines != 12 {
		t.Errorf("%d lines, want one per target:\n%s", lines, got)
	}
	for _, want := range []string{
		"GOAL MET      Durable commands vs pgbench load+append",
		"FLOOR MISSED  Relay drain, projector running",
		"[goal ≥ 25000 events/s, floor ≥ 20000 events/s]  floor missed by 15000 events/s (25% of it)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the verdict lacks %q:\n%s", want, got)
		}
	}
	cpu := CPUText(r, nil)
	for _, want := range []string{"CPU PER COMMAND", "PostgreSQL", "total", "SUSTAINABLE RATE: 1000 commands/s", "fail: command p99 30.0 ms > 10 ms"} {
		if !strings.Contains(cpu, want) {
			t.Errorf("the CPU text lacks %q:\n%s", want, cpu)
		}
	}
}
