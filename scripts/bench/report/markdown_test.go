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
	r.Commands[1] = runOf(t, 16, load.OpAdd, 1500, 8*time.Millisecond, 0)
	r.Rebuild = &Rebuild{Available: false}
	r.Notes = []string{"projector rebuild: not available in this build"}
	r.Machine.LoadBefore, r.Machine.LoadAfter = "8.38 7.95 6.65", "1.00 0.90 0.80"
	checks := Evaluate(r)
	md := Markdown(r, checks, []string{PlotWrites, PlotLagCDF})

	for _, want := range []string{
		"# Cart CQRS benchmark",
		"2025-03-01 12:00 UTC",
		"| CPUs | 2 × Test CPU |",
		"**The machine was busy with other work while this ran** (1-minute load average 8.38 before, 1.00 after, on 2 CPUs)",
		"| PostgreSQL settings | fsync=on |",
		// The verdict table says how far a miss was.
		"| Durable command throughput vs PostgreSQL | ≥ 100% of pgbench load+append tps (best client count each) | 75%: 1500 commands/s (16 clients) vs 2000 tps (16 clients) | FAIL: 25 points short (75% of the target) |",
		"| Full read-model rebuild | ≥ 100000 events/s | not available | n/a |",
		// One row per client count: pgbench, the service, the ratio.
		"| 16 | 3000 | 2000 | 1500 | 75% | 8.00 | 8.00 | 0 |",
		"| 1 | 5000 | 0.20 | 0.20 | 4500 | 90% | 0.22 | 0.22 |",
		"| visibility lag | 1000 |",
		"| relay drain | **25000 events/s** (4.00 s from the first to the last row published) |",
		"`projector rebuild` is not available in this build",
		"| command | backlog | 41.0 | 39.1 |",
		"12.00% runtime.mallocgc",
		"* projector rebuild: not available in this build",
		`BENCH_CLIENTS="1 16"`,
		"![throughput vs clients, writes](writes_throughput.png)",
		"![visibility lag CDF](lag_cdf.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	r.Machine.LoadBefore = "0.50 0.40 0.30"
	if quiet := Markdown(r, checks, nil); strings.Contains(quiet, "busy with other work") {
		t.Error("a quiet machine is called busy")
	}
	// A plot that was not drawn is not linked.
	if strings.Contains(md, PlotReads) {
		t.Error("the report links a plot that was not drawn")
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestPlots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	drawn, err := Plots(passingResults(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{PlotWrites, PlotReads, PlotLatency, PlotLagCDF}
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
	if lines := strings.Count(got, "\n"); lines != 11 {
		t.Errorf("%d lines, want one per target:\n%s", lines, got)
	}
	for _, want := range []string{
		"PASS  Durable command throughput vs PostgreSQL  105%: 2100 commands/s",
		"FAIL  Relay drain of an outbox backlog",
		"[goal: ≥ 20000 events/s]  MISSED: 75% short (25% of the target)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the verdict lacks %q:\n%s", want, got)
		}
	}
}
