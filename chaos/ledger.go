package chaos

import (
	"fmt"
	"sync"
	"time"
)

// Outcome is what the client knows about a command once it gave up or got
// an answer.
type Outcome string

const (
	// OK: a 2xx; the command is applied and must never be lost.
	OK Outcome = "ok"
	// Failed: a definite 4xx, or the request never left (connection
	// refused); the command is not applied.
	Failed Outcome = "failed"
	// Unknown: a timeout, a broken connection or a 5xx, and no retry
	// settled it; the command may or may not have been applied.
	Unknown Outcome = "unknown"
)

// Command is one logical command the load sent, with every retry of it.
// Its ID is both its Idempotency-Key and its X-Correlation-Id, so its
// events carry it and the oracle can find them.
type Command struct {
	ID        string
	Customer  string
	Kind      string // open, add-item, change-quantity, remove-item, checkout
	CartID    string // the target; empty for open
	ProductID string
	Quantity  int
	IfMatch   int // the version If-Match names; 0 for none

	Outcome  Outcome
	Status   int // the last HTTP status; 0 after a transport error
	Version  int // the version a 2xx answered with
	Result   string
	Attempts int
	Err      string
	Start    time.Time
	End      time.Time
}

// String describes the command for a failure message.
func (c *Command) String() string {
	return fmt.Sprintf("%s %s cart=%s product=%s qty=%d ifMatch=%d by %s: %s (status %d, v%d, %d attempts, %s)",
		c.ID, c.Kind, c.CartID, c.ProductID, c.Quantity, c.IfMatch, c.Customer, c.Outcome, c.Status, c.Version, c.Attempts, c.Err)
}

// Ledger is the log of every command a run sent, and of the events a test
// wrote straight into PostgreSQL.
type Ledger struct {
	mu       sync.Mutex
	cmds     []*Command
	injected map[string]bool // event id → committed
	cartIDs  []string
	known    map[string]bool
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{injected: map[string]bool{}, known: map[string]bool{}} }

// Add records a finished command.
func (l *Ledger) Add(c *Command) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, c)
	if c.CartID != "" && !l.known[c.CartID] {
		l.known[c.CartID] = true
		l.cartIDs = append(l.cartIDs, c.CartID)
	}
}

// carts are the ids of the carts the commands named or opened.
func (l *Ledger) carts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cartIDs[:len(l.cartIDs):len(l.cartIDs)]
}

// Inject records an event a test inserted itself, and whether its
// transaction committed (else it rolled back and must appear nowhere).
func (l *Ledger) Inject(eventID string, committed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.injected[eventID] = committed
}

// Commands returns the commands recorded so far.
func (l *Ledger) Commands() []*Command {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Command(nil), l.cmds...)
}

func (l *Ledger) injectedEvents() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]bool, len(l.injected))
	for k, v := range l.injected {
		m[k] = v
	}
	return m
}

// Counts sums the ledger up.
type Counts struct {
	OK, Failed, Unknown, Attempts, Retried int
}

// Plus adds two counts.
func (c Counts) Plus(d Counts) Counts {
	return Counts{OK: c.OK + d.OK, Failed: c.Failed + d.Failed, Unknown: c.Unknown + d.Unknown,
		Attempts: c.Attempts + d.Attempts, Retried: c.Retried + d.Retried}
}

func (c Counts) String() string {
	return fmt.Sprintf("commands ok=%d failed=%d unknown=%d (attempts %d, %d retried)", c.OK, c.Failed, c.Unknown, c.Attempts, c.Retried)
}

// Counts counts the commands by outcome, optionally only those that
// started within [from, to) (zero times mean unbounded).
func (l *Ledger) Counts(from, to time.Time) Counts {
	var n Counts
	for _, c := range l.Commands() {
		if (!from.IsZero() && c.Start.Before(from)) || (!to.IsZero() && !c.Start.Before(to)) {
			continue
		}
		switch c.Outcome {
		case OK:
			n.OK++
		case Failed:
			n.Failed++
		case Unknown:
			n.Unknown++
		}
		n.Attempts += c.Attempts
		if c.Attempts > 1 {
			n.Retried++
		}
	}
	return n
}

// owners maps each cart to the customer whose commands named it.
func (l *Ledger) owners() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]string{}
	for _, c := range l.cmds {
		if c.CartID != "" && m[c.CartID] == "" {
			m[c.CartID] = c.Customer
		}
	}
	return m
}
