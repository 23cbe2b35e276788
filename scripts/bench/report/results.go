// Package report turns a benchmark's measurements into its verdict: the
// ratios of the system to the raw limits and the targets it meets or misses
// (Evaluate), the Markdown report (Markdown) and its plots (Plots).
package report

import (
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
	// Commands are the command service's closed-loop runs per client count,
	// CommandsHalf its open-loop run at half the best throughput.
	Commands     []load.Result `json:"commands"`
	CommandsHalf *load.Result  `json:"commandsHalf,omitempty"`
	// Reads are the query service's closed-loop runs, ReadsHalf its
	// open-loop run at half the best throughput.
	Reads     []load.Result `json:"reads"`
	ReadsHalf *load.Result  `json:"readsHalf,omitempty"`
	// Lag is the open-loop run of commands each read back at once.
	Lag *load.Result `json:"lag,omitempty"`
	// Mix is a closed-loop run of the realistic mix, for information.
	Mix *load.Result `json:"mix,omitempty"`

	Drain   *Drain   `json:"drain,omitempty"`
	Rebuild *Rebuild `json:"rebuild,omitempty"`
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
	// LoadBefore and LoadAfter are /proc/loadavg around the run: other
	// work on the machine shows there.
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
}

// Settings are the knobs the run used.
type Settings struct {
	Duration    time.Duration `json:"duration"`
	Warmup      time.Duration `json:"warmup"`
	Clients     []int         `json:"clients"`
	LagRate     float64       `json:"lagRate"`
	DrainEvents int           `json:"drainEvents"`
	ReadCarts   int           `json:"readCarts"`
	Elapsed     time.Duration `json:"elapsed"`
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
