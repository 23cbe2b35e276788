// Package report turns a benchmark's measurements into its verdict: the
// ratios of the system to the raw limits and the targets it meets or misses
// (Evaluate), the Markdown report (Markdown) and its plots (Plots).
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/pgbench"
	"github.com/cart-cqrs/cart/scripts/bench/procs"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// Results is everything one `make bench` measured. A phase that did not run
// (or failed) leaves its field empty and says why in Notes.
type Results struct {
	Date     time.Time `json:"date"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`

	// PGBench holds the raw PostgreSQL runs, per script and client count.
	PGBench []pgbench.Run `json:"pgbench"`
	// RawReads are the bare echo + Redis GET handler's runs per client count.
	RawReads []load.Result `json:"rawReads"`
	// Commands are the command service's closed-loop runs per client count.
	Commands []load.Result `json:"commands"`
	// Reads are the query service's closed-loop runs, ReadsHalf its
	// open-loop run at half the best throughput.
	Reads     []load.Result `json:"reads"`
	ReadsHalf *load.Result  `json:"readsHalf,omitempty"`
	// Steps are the open-loop runs of commands each read back at once, at
	// rising rates, in the order they ran (a retried rate appears twice):
	// the visibility lag and the sustainable rate.
	Steps []load.Result `json:"steps"`
	// Mix is a closed-loop run of the realistic mix, for information.
	Mix *load.Result `json:"mix,omitempty"`
	// Usage is what every process of the system used over each measured
	// window: the closed-loop command runs, the steps and the drain.
	Usage []Usage `json:"usage"`

	Drain   *Drain   `json:"drain,omitempty"`
	Rebuild *Rebuild `json:"rebuild,omitempty"`
	// NATSSync compares the stream's durability settings: a run per
	// sync_interval of the benchmark's own nats-server.
	NATSSync []SyncRun `json:"natsSync,omitempty"`
	// Memory is each service's resident set, by service, under load and
	// through the backlog.
	Memory []ServiceMemory `json:"memory"`
	// Profile is the command service's CPU profile during its best
	// closed-loop run.
	Profile *Profile `json:"profile,omitempty"`
	// Notes are what a reader must know: phases that failed or were not
	// available, and why.
	Notes []string `json:"notes,omitempty"`
}

// Machine is where the benchmark ran.
type Machine struct {
	NProc       int               `json:"nproc"`
	CPU         string            `json:"cpu"`
	Kernel      string            `json:"kernel"`
	GoVersion   string            `json:"goVersion"`
	PGVersion   string            `json:"pgVersion"`
	PGSettings  map[string]string `json:"pgSettings"`
	RedisVer    string            `json:"redisVersion"`
	NATSVersion string            `json:"natsVersion"`
	// LoadBefore and LoadAfter are /proc/loadavg around the run, for
	// information: the benchmark's own build and runs show there too.
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
	// OutsideBefore is the CPUs' worth of work from outside the benchmark
	// (all CPU time on /proc/stat but the benchmark's own) over a quiet
	// moment before it started; -1 when it could not be read.
	OutsideBefore float64 `json:"outsideBeforeCPUs"`
	// PGStatStatements is "" when pg_stat_statements counted the
	// statements, else why it did not (not loaded, and how to load it).
	PGStatStatements string `json:"pgStatStatements,omitempty"`
}

// Settings are the knobs the run used.
type Settings struct {
	Duration time.Duration `json:"duration"`
	Warmup   time.Duration `json:"warmup"`
	Clients  []int         `json:"clients"`
	// LagRate is the rate of the lag target (1000/s), IdleRate the idle
	// lag's (50/s); Rates are the steps of the sustainable rate, those
	// two and half the lag rate among them.
	LagRate     float64       `json:"lagRate"`
	IdleRate    float64       `json:"idleRate"`
	Rates       []float64     `json:"rates"`
	DrainEvents int           `json:"drainEvents"`
	ReadCarts   int           `json:"readCarts"`
	Elapsed     time.Duration `json:"elapsed"`
	// Code names the code measured: the commit of the binaries' tree;
	// Note is what else a reader must know of the run.
	Code string `json:"code"`
	Note string `json:"note,omitempty"`

	// NATSSync are the nats-server sync settings compared (none: the
	// comparison was off).
	NATSSync []string `json:"natsSync,omitempty"`
}

// Drain is the relay draining an outbox backlog written while no command
// service ran, and the projector catching up with it.
type Drain struct {
	Events int `json:"events"`
	// Seconds is from the first to the last observation of the outbox
	// shrinking; EventsPerSec is the events published in between per
	// second.
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"eventsPerSec"`
	// StartupSeconds is from starting the command service to the first
	// published row (migrations, connections, leadership).
	StartupSeconds float64 `json:"startupSeconds"`
	// CatchUpSeconds is from starting the command service until the
	// projector had applied the whole backlog; 0 when it did not in time.
	CatchUpSeconds float64 `json:"catchUpSeconds"`
	CatchUpPerSec  float64 `json:"catchUpPerSec"`
}

// Rebuild is a full read-model rebuild (projector rebuild).
type Rebuild struct {
	Available    bool    `json:"available"`
	Events       int64   `json:"events"`
	Carts        int64   `json:"carts"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"eventsPerSec"`
	// Line is the rebuild's last line of output, as printed.
	Line string `json:"line"`
	// MaxRSSKB is the rebuild process's peak resident set.
	MaxRSSKB int64 `json:"maxRSSKB"`
}

// ServiceMemory is one service's resident set in one phase.
type ServiceMemory struct {
	Service string `json:"service"`
	// Phase: "load" (the HTTP runs) or "backlog" (draining and catching up).
	Phase string `json:"phase"`
	procs.Memory
}

// Profile is where the command service spent its CPU.
type Profile struct {
	// Source is "pprof" (the service's /debug/pprof) or "perf".
	Source string `json:"source"`
	// Run names the load it was taken under.
	Run string `json:"run"`
	// Flat and Cumulative are the top lines of the profile's report.
	Flat       []string `json:"flat"`
	Cumulative []string `json:"cumulative"`
}

// ReadResults reads the results a run wrote (results.json), such as the
// run kept from before the speed work (bench/before.json).
func ReadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	return &r, nil
}
