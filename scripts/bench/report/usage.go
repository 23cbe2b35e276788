package report

// The processes of the system, in the order the report lists them.
const (
	ProcPostgres = "PostgreSQL"
	ProcNATS     = "NATS"
	ProcRedis    = "Redis"
)

// SystemProcesses are the processes whose CPU time is the system's.
var SystemProcesses = []string{ProcPostgres, ProcNATS, ProcRedis, ServiceCommand, ServiceProjector, ServiceQuery}

// The parts of PostgreSQL's CPU time.
const (
	// PartPGBackends: the connections to the benchmark's database.
	PartPGBackends = "backends"
	// PartPGShared: the postmaster, WAL writer, checkpointer, background
	// writer…, which on a shared server work for other databases too.
	PartPGShared = "shared"
	// PartPGExited: children that exited within the window; on a shared
	// server, other databases' short connections among them.
	PartPGExited = "exited"
)

// The kinds of measured window.
const (
	WindowClosed  = "closed"   // a closed-loop commands run
	WindowStep    = "step"     // an open-loop step, commands read back
	WindowDrain   = "drain"    // the relay draining the outbox backlog
	WindowCatchUp = "catch-up" // the drain until the projector applied it all
	WindowIdle    = "idle"     // no load at all: the cost of timers and polling
	WindowSync    = "sync"     // a closed-loop commands run of the NATS sync comparison
)

// Usage is what the system's processes used over one measured window.
type Usage struct {
	Kind    string  `json:"kind"`
	Clients int     `json:"clients,omitempty"`
	Rate    float64 `json:"rate,omitempty"`
	// Attempt counts the runs of a step at one rate (a failed step is run
	// once more before the stepping stops).
	Attempt int     `json:"attempt,omitempty"`
	Seconds float64 `json:"seconds"`
	// Units is what the CPU time is divided by, Unit its name: the
	// commands of the window (answered or failed), or the drain's events.
	Units int64  `json:"units"`
	Unit  string `json:"unit"`
	// Processes is the CPU time of each of SystemProcesses.
	Processes []ProcessCPU `json:"processes"`
	// LoadGen is the load generator's CPU seconds, apart from the system's.
	LoadGen *float64 `json:"loadGenSeconds,omitempty"`
	// Outside is CPU seconds of work that was neither the system's nor the
	// benchmark's (other processes, the hypervisor's steal), Interrupts
	// the CPU's seconds in interrupts (loopback traffic among them);
	// Outside is nil when /proc/stat could not be read.
	Outside    *float64 `json:"outsideSeconds,omitempty"`
	Interrupts float64  `json:"interruptSeconds"`
	// Postgres is PostgreSQL's work in the benchmark's database.
	Postgres *PGWork `json:"postgres,omitempty"`
}

// ProcessCPU is one process's CPU time (user + system, with its children
// that exited) over a window.
type ProcessCPU struct {
	Process  string  `json:"process"`
	Seconds  float64 `json:"seconds"`
	Measured bool    `json:"measured"`
	// Parts splits Seconds (PostgreSQL's: PartPGBackends, PartPGShared,
	// PartPGExited).
	Parts map[string]float64 `json:"parts,omitempty"`
	// OtherClients counts the clients of a shared server (Redis) that were
	// not the system's and were active in the window: their work is in
	// Seconds too.
	OtherClients int `json:"otherClients,omitempty"`
	// Why says what could not be measured, or what is left out.
	Why string `json:"why,omitempty"`
}

// PGWork is what PostgreSQL did for the benchmark's database in a window.
type PGWork struct {
	// Transactions is the xact_commit + xact_rollback delta of
	// pg_stat_database; -1 when it could not be read.
	Transactions int64 `json:"transactions"`
	// Calls is every statement's calls (pg_stat_statements, reset at the
	// window's start); Statements the most called ones. Both are empty when
	// pg_stat_statements is not loaded.
	Calls      int64       `json:"calls"`
	Statements []Statement `json:"statements,omitempty"`
	Counted    bool        `json:"counted"`
}

// Statement is a normalized statement, its calls in the window and the
// time PostgreSQL spent executing them.
type Statement struct {
	Query  string  `json:"query"`
	Calls  int64   `json:"calls"`
	ExecMs float64 `json:"execMs"`
}

// System is the CPU seconds of the measured processes together.
func (u Usage) System() float64 {
	var s float64
	for _, p := range u.Processes {
		if p.Measured {
			s += p.Seconds
		}
	}
	return s
}

// Complete reports whether every process of the system was measured.
func (u Usage) Complete() bool {
	for _, p := range u.Processes {
		if !p.Measured {
			return false
		}
	}
	return len(u.Processes) > 0
}

// Process is the CPU time of one process.
func (u Usage) Process(name string) (ProcessCPU, bool) {
	for _, p := range u.Processes {
		if p.Process == name {
			return p, true
		}
	}
	return ProcessCPU{}, false
}

// PerUnit is seconds of CPU per unit, in microseconds; 0 without units.
func (u Usage) PerUnit(seconds float64) float64 {
	if u.Units <= 0 {
		return 0
	}
	return 1e6 * seconds / float64(u.Units)
}

// UsageOf finds the window of a kind at a client count and rate, 0 for
// any (the last attempt, for a step).
func UsageOf(us []Usage, kind string, clients int, rate float64) (Usage, bool) {
	var (
		found Usage
		ok    bool
	)
	for _, u := range us {
		if u.Kind == kind && (clients == 0 || u.Clients == clients) && (rate == 0 || u.Rate == rate) {
			found, ok = u, true
		}
	}
	return found, ok
}

// CPUPerCommandRun is the closed-loop window the CPU-per-command target is
// read from: 64 clients, as the issue measured it, or the most clients run.
func CPUPerCommandRun(r Results) (Usage, bool) {
	if u, ok := UsageOf(r.Usage, WindowClosed, 64, 0); ok {
		return u, true
	}
	var (
		best Usage
		ok   bool
	)
	for _, u := range r.Usage {
		if u.Kind == WindowClosed && u.Clients >= best.Clients {
			best, ok = u, true
		}
	}
	return best, ok
}
