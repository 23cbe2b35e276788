package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
)

// Group commit. A durable commit costs a WAL flush; one transaction per
// command caps throughput at one flush per command. The committer instead
// gathers the commands that are waiting to commit into one transaction, in
// one round trip, so that one flush makes many commands durable. Each
// command is still checked on its own — its compare-and-set, its unique
// keys — and a command that fails is taken out of the group and answered
// with its own error, while the others are committed without it. Every
// command is answered only after the commit that holds it.
//
// Groups form by themselves: a worker takes every command queued while it
// was busy with the previous group (up to the group limit), so under low
// load a group is one command and nothing waits, and under high load the
// groups grow.

// Defaults for the group commit.
const (
	DefaultCommitWorkers = 2
	DefaultMaxGroup      = 64
	// groupTimeout bounds one group's transaction: a stuck database fails
	// the group instead of holding its commands forever.
	groupTimeout = 30 * time.Second
)

// errClosed is what a command gets when the repository was closed before it
// could be queued: nothing of it was written.
var errClosed = errors.New("postgres: repository closed")

// unit is one command's writes: statements that all take effect, or none.
type unit struct {
	// ctx is the command's: a unit whose caller gave up before its group
	// started is not written.
	ctx   context.Context
	batch *pgx.Batch
	// locks name the rows the unit contends on: its cart (or the customer
	// whose open cart it inserts) and its idempotency key. Two units of one
	// group never share one: the second waits for the next group, so that it
	// meets the first one committed, as it would one transaction after the
	// other.
	locks []string
	// events are what the unit appends (none for an idempotency key stored
	// alone), and appendAt the index of the statement appending them, which
	// returns their positions.
	events   []envelope.Envelope
	appendAt int
	// done receives the unit's outcome once; err is set when it failed.
	done chan error
	err  error
}

// committer runs the group commit: workers take units from queue and commit
// them in groups.
type committer struct {
	pool     *pgxpool.Pool
	relay    Relay // nil: no relay in this process
	metrics  *commitMetrics
	maxGroup int
	queue    chan *unit
	wg       sync.WaitGroup

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
}

func newCommitter(pool *pgxpool.Pool, relay Relay, m *commitMetrics, workers, maxGroup int) *committer {
	c := &committer{pool: pool, relay: relay, metrics: m, maxGroup: maxGroup, queue: make(chan *unit, workers*maxGroup)}
	for range workers {
		c.wg.Go(c.work)
	}
	return c
}

// close stops taking units, commits those already queued and waits for the
// workers.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// commit queues u and waits for its outcome. When ctx ends first the outcome
// is unknown — the unit may still commit — and the error says so.
func (c *committer) commit(ctx context.Context, u *unit) error {
	u.ctx, u.done = ctx, make(chan error, 1)
	if err := c.enqueue(ctx, u); err != nil {
		return err
	}
	select {
	case err := <-u.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("gave up waiting for the commit, whose outcome is unknown: %w", context.Cause(ctx))
	}
}

func (c *committer) enqueue(ctx context.Context, u *unit) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return errClosed
	}
	select {
	case c.queue <- u:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (c *committer) work() {
	group := make([]*unit, 0, c.maxGroup)
	for u := range c.queue {
		group = append(group[:0], u)
	gather:
		for len(group) < c.maxGroup {
			select {
			case u, ok := <-c.queue:
				if !ok {
					break gather
				}
				group = append(group, u)
			default:
				break gather
			}
		}
		c.run(group)
	}
}

// run commits a group and answers each of its units.
func (c *committer) run(group []*unit) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	// One lock order for every group: two groups (of this or another
	// instance) touching the same carts wait for each other instead of
	// deadlocking.
	slices.SortStableFunc(group, func(a, b *unit) int { return slices.Compare(a.locks, b.locks) })
	for len(group) > 0 {
		var live, next []*unit
		taken := map[string]bool{}
		for _, u := range group {
			switch {
			case u.ctx.Err() != nil:
				u.done <- context.Cause(u.ctx)
			case slices.ContainsFunc(u.locks, func(l string) bool { return taken[l] }):
				next = append(next, u)
			default:
				for _, l := range u.locks {
					taken[l] = true
				}
				live = append(live, u)
			}
		}
		c.commitLive(ctx, live)
		group = next
	}
}

// commitLive commits the units that share no lock, taking out and answering
// each that fails, until the rest commit.
func (c *committer) commitLive(ctx context.Context, live []*unit) {
	for len(live) > 0 {
		failed, err := c.try(ctx, live)
		if err != nil {
			for _, u := range live {
				u.done <- err
			}
			return
		}
		if failed == nil {
			c.handOff(live)
			for _, u := range live {
				u.done <- nil
			}
			return
		}
		// Rolled back: the failed unit is answered and the rest go again
		// without it.
		failed.done <- failed.err
		live = slices.DeleteFunc(live, func(u *unit) bool { return u == failed })
	}
}

// try sends the live units as one batch, which PostgreSQL runs as one
// implicit transaction, committed when its last statement succeeded: one
// round trip, one commit for the group. A statement that fails — a lost
// compare-and-set raises CQ409, a taken key a unique violation — rolls all of
// it back; try returns that statement's unit, with its err, so that the
// others can go again. An error that is no unit's own (the connection, the
// commit) is returned for all.
func (c *committer) try(ctx context.Context, live []*unit) (failed *unit, err error) {
	start := time.Now()
	defer func() { c.metrics.observe(len(live), failed == nil && err == nil, time.Since(start)) }()
	// Queued afresh each try: pgx remembers the prepared statement in a
	// queued query, and a failed batch deallocates its statements.
	b := &pgx.Batch{}
	appends := false
	for _, u := range live {
		for _, q := range u.batch.QueuedQueries {
			b.Queue(q.SQL, q.Arguments...)
		}
		appends = appends || len(u.events) > 0
	}
	notify := appends && (c.relay == nil || !c.relay.Leading())
	if notify {
		b.Queue(notifyRelay, eventlog.OutboxChannel)
	}
	br := c.pool.SendBatch(ctx, b)
	failed, err = readResults(br, live, notify)
	// Close reads up to the end of the implicit transaction: an error there
	// means the commit failed.
	if cerr := br.Close(); err == nil && failed == nil && cerr != nil {
		err = fmt.Errorf("commit: %w", cerr)
	}
	if err != nil {
		return nil, classify(err)
	}
	return failed, nil
}

// notifyRelay wakes the leading relay when it runs in another process: one
// notification per group, delivered on commit.
const notifyRelay = `SELECT pg_notify($1, '')`

// readResults reads the batch's results unit by unit, and the notification's
// when notify is set. A statement error is its unit's failure and ends the
// batch (PostgreSQL skips the rest).
func readResults(br pgx.BatchResults, live []*unit, notify bool) (*unit, error) {
	for _, u := range live {
		for k := range u.batch.Len() {
			var err error
			if k == u.appendAt {
				err = readPositions(br, u)
			} else {
				_, err = br.Exec()
			}
			var pe *pgconn.PgError
			switch {
			case errors.As(err, &pe):
				u.err = classify(err)
				return u, nil
			case err != nil:
				return nil, err
			}
		}
	}
	if notify {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("notify the relay: %w", err)
		}
	}
	return nil, nil
}

// readPositions reads the positions the append statement returns into u's
// events.
func readPositions(br pgx.BatchResults, u *unit) error {
	var positions []int64
	if err := br.QueryRow().Scan(nil, &positions); err != nil {
		return err
	}
	if len(positions) != len(u.events) {
		return fmt.Errorf("append returned %d positions for %d events", len(positions), len(u.events))
	}
	slices.Sort(positions) // the events are in version order, and so are their positions
	for i, p := range positions {
		u.events[i].Position = p
	}
	return nil
}

// handOff gives the relay of this process the events a group committed,
// before their commands are answered: a cart's next command, and so its
// next events, come after.
func (c *committer) handOff(group []*unit) {
	if c.relay == nil {
		return
	}
	var evs []envelope.Envelope
	for _, u := range group {
		evs = append(evs, u.events...)
	}
	if len(evs) > 0 {
		c.relay.Committed(evs)
	}
}
