package report

import (
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

func TestNATSSyncSection(t *testing.T) {
	t.Parallel()
	r := passingResults(t)
	r.Settings.NATSSync = []string{SyncDefault, SyncAlways, "1s"}
	def, always := runOf(t, 16, load.OpAdd, 3000, 8*time.Millisecond, 0), runOf(t, 16, load.OpAdd, 2500, 10*time.Millisecond, 0)
	defUsage, alwaysUsage := usageOf(WindowSync, 16, 0, 30_000, 0.25), usageOf(WindowSync, 16, 0, 25_000, 0.40)
	alwaysUsage.Processes[1] = ProcessCPU{Process: ProcNATS, Why: "not measured: gone"} // 400 µs less its 53
	r.NATSSync = []SyncRun{
		{Sync: SyncDefault, Publish: &SyncPublish{Messages: 30_000, Bytes: 512, Seconds: 3, PerSec: 10_000, P50Ms: 0.09, P99Ms: 0.2, MaxMs: 4},
			Commands: &def, Usage: &defUsage, CaughtUp: true},
		{Sync: SyncAlways, Publish: &SyncPublish{Messages: 1500, Bytes: 512, Seconds: 3, PerSec: 500, P50Ms: 1.9, P99Ms: 3.5, MaxMs: 9},
			Commands: &always, Usage: &alwaysUsage, Behind: 4000, CaughtUp: true, CaughtUpSeconds: 6.24},
		{Sync: "1s"}, // failed: see Notes
	}
	md := Markdown(r, nil, Evaluate(r), nil)
	for _, want := range []string{
		"## Stream durability: NATS sync",
		"(512-byte messages with a `Nats-Msg-Id`, to a file stream of their own, one replica) for 3 s",
		"the `commands` scenario ran closed loop at 16 clients",
		"| default (2m) | 10000 | 0.09 / 0.20 | 3000 | 8.00 | 8.00 | 0 | 250 | 33 | none |",
		"| `always` | 500 | 1.90 / 3.50 | 2500 | 10.01 | 10.01 | 0 | 347 (incomplete) | – | 4000, in the stream 6.2 s later |",
		"| `1s` | – | – | – | – | – | – | – | – | – |",
		"* NATS: not measured: gone",
		"* **default**: ", "`RELAY_RETENTION`", "* **`always`**: ", "* **R3** ",
		`BENCH_NATS_SYNC="default always 1s"`,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}

	r.NATSSync, r.Settings.NATSSync = nil, nil
	md = Markdown(r, nil, Evaluate(r), nil)
	for _, want := range []string{"## Stream durability: NATS sync\n\nnot measured (see Notes).", `BENCH_NATS_SYNC="off"`} {
		if !strings.Contains(md, want) {
			t.Errorf("without the comparison, the report lacks %q", want)
		}
	}
}

func TestBehindText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		run  SyncRun
		want string
	}{
		{SyncRun{CaughtUp: true}, "none"},
		{SyncRun{Behind: 120, CaughtUp: true, CaughtUpSeconds: 0.31}, "120, in the stream 0.3 s later"},
		{SyncRun{Behind: 9000, CaughtUpSeconds: 15.02}, "9000, still not all in the stream 15 s later"},
	} {
		if got := behindText(tc.run); got != tc.want {
			t.Errorf("behindText(%+v) = %q, want %q", tc.run, got, tc.want)
		}
	}
}
