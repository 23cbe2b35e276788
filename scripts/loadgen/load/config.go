// Package load drives the cart's HTTP APIs the way a crowd of customers
// would — opening carts, adding, changing and removing items, checking out,
// reading their carts and reading their own writes — and measures what they
// get: latency histograms per request kind (HDR), throughput, failures and
// the end-to-end visibility lag from a command's 2xx to the query service
// serving its version.
//
// It runs closed loop (N clients, each sending its next request as soon as
// the last one answered: the most the system does at that concurrency) or
// open loop (requests scheduled at a fixed rate, each timed from when it was
// meant to be sent, so that a stalled system is charged for the requests it
// kept waiting — no coordinated omission).
package load

import (
	"errors"
	"fmt"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
)

// Mode is how requests are paced.
type Mode string

const (
	// Closed: each client sends its next request when the last answered.
	Closed Mode = "closed"
	// Open: requests are scheduled at a fixed rate whatever the answers.
	Open Mode = "open"
)

// Scenarios, by name: what the simulated customers do.
var Scenarios = map[string]Mix{
	// commands: only writes, for the command service's throughput. A cart
	// gets about twenty commands before its checkout.
	"commands": {Add: 50, Change: 20, Remove: 12, Checkout: 5},
	// reads: only reads of carts prepared before the run.
	"reads": {Read: 1},
	// lag: the commands mix, every command followed by a read of its
	// version, for the end-to-end visibility lag.
	"lag": {Add: 50, Change: 20, Remove: 12, Checkout: 5, ReadAfterWrite: 1},
	// mix: a shop's day: mostly reads, some writes, a fifth of them read
	// back at once.
	"mix": {Add: 20, Change: 8, Remove: 5, Checkout: 3, Read: 64, ReadAfterWrite: 0.2},
}

// SeededProducts are the available products of the demo catalog
// (migration 00005).
var SeededProducts = []string{"123", "456", "789", "101", "202", "303", "404", "505", "606", "707", "808"}

// Config is one run.
type Config struct {
	// CommandURL and QueryURL are the services' base URLs. A mix without
	// writes needs no CommandURL when the carts are synthetic; one without
	// reads or read-after-write needs no QueryURL.
	CommandURL, QueryURL string
	Scenario             string
	Mix                  Mix
	Mode                 Mode
	// Clients is the number of concurrent clients (closed loop) or the most
	// requests in flight (open loop).
	Clients int
	// Rate is the open loop's schedule, in ops per second.
	Rate float64
	// Warmup runs the load unmeasured before Duration is measured.
	Warmup, Duration time.Duration
	// Drain bounds how long an open-loop run may take, after its schedule
	// ended, to send and finish what it scheduled.
	Drain time.Duration
	// Customers is the number of distinct customers; each client drives
	// its own share of them.
	Customers int
	// CustomerPrefix starts every customer id, so that runs do not meet each
	// other's carts.
	CustomerPrefix string
	// SetupLines: a read-only run prepares one open cart per customer
	// holding this many lines before it starts.
	SetupLines int
	// SyntheticCarts: a reads run reads these cart ids (SyntheticCartID)
	// instead of preparing carts through the command service — the raw read
	// baseline serves them.
	SyntheticCarts bool
	// Auth signs each customer's bearer token (the services' HS256 secret,
	// issuer and audience).
	Auth     auth.Config
	Products []string
	Seed     uint64
	// Timeout bounds each request.
	Timeout time.Duration
	// Idempotency sends an Idempotency-Key with every command.
	Idempotency bool
	// Marks, when set, is told as it happens that the measured window opens
	// and that it closes, so that a caller can measure something else (the
	// CPU time of the system) over the very same window.
	Marks func(Mark)
}

// Mark is a boundary of the measured window.
type Mark string

// MarkPrefix starts the line loadgen -marks prints for a mark, on stdout:
// "@loadgen measuring", "@loadgen measured".
const MarkPrefix = "@loadgen "

const (
	// Measuring: the warm-up is over, requests sent from now on count.
	Measuring Mark = "measuring"
	// Measured: the window is over (in an open loop, requests scheduled
	// before it may still be finishing).
	Measured Mark = "measured"
)

// Validate reports every setting that cannot run.
func (c Config) Validate() error {
	errs := []error{c.Mix.Validate()}
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	writes := c.Mix.Add+c.Mix.Change+c.Mix.Remove+c.Mix.Checkout > 0
	reads := c.Mix.Read > 0 || c.Mix.ReadAfterWrite > 0
	check(c.Mode == Closed || c.Mode == Open, "mode %q: want %q or %q", c.Mode, Closed, Open)
	check(c.Clients >= 1, "clients %d: want at least 1", c.Clients)
	check(c.Customers >= c.Clients, "customers %d: want at least one per client (%d)", c.Customers, c.Clients)
	check(c.Mode != Open || c.Rate > 0, "open loop needs a rate")
	check(c.Duration > 0, "duration %v: want more than 0", c.Duration)
	check(c.Warmup >= 0 && c.Drain >= 0 && c.Timeout > 0, "warm-up, drain and timeout must not be negative (timeout positive)")
	check(!writes || c.CommandURL != "", "a mix with writes needs the command service's URL")
	check(!reads || c.QueryURL != "", "a mix with reads needs the query service's URL")
	check(writes || c.SyntheticCarts || c.CommandURL != "", "a read-only mix prepares its carts through the command service: give its URL, or use synthetic carts")
	check(!(writes && c.SyntheticCarts), "synthetic carts are read-only")
	check(len(c.Products) > 0, "no products to add")
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("signing tokens (AUTH_HS256_SECRET, AUTH_ISSUER, AUTH_AUDIENCE): %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("load: config: %w", err)
	}
	return nil
}

// readOnly reports a mix that sends no command during the run, whose carts
// are prepared before it.
func (c Config) readOnly() bool { return c.Mix.Add+c.Mix.Change+c.Mix.Remove+c.Mix.Checkout == 0 }
