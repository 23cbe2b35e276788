package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
)

// Run runs the load cfg describes and returns what was measured.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	started := time.Now()
	shoppers, err := newShoppers(cfg, started)
	if err != nil {
		return Result{}, err
	}
	// The preparation may run more requests at once than the run.
	api := NewAPI(cfg.CommandURL, cfg.QueryURL, max(cfg.Clients, prepareWorkers), cfg.Timeout, cfg.Idempotency)
	defer api.Close()
	if cfg.readOnly() {
		if err := prepare(ctx, cfg, api, shoppers); err != nil {
			return Result{}, err
		}
	}

	rec := NewRecorder()
	workers := make([]*worker, cfg.Clients)
	for w := range workers {
		workers[w] = &worker{
			api: api, mix: cfg.Mix, catalog: cfg.Products, rec: rec,
			rng: rand.New(rand.NewPCG(cfg.Seed, uint64(w))),
		}
	}
	for i, s := range shoppers {
		w := workers[i%len(workers)]
		w.shoppers = append(w.shoppers, s)
	}

	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	var (
		notSent int64
		marks   sync.WaitGroup
	)
	if cfg.Marks != nil {
		mctx, cancel := context.WithCancel(ctx)
		defer cancel()
		marks.Go(func() { mark(mctx, cfg.Marks, measureFrom, end) })
	}
	if cfg.Mode == Closed {
		runClosed(ctx, workers, measureFrom, end)
	} else {
		notSent = runOpen(ctx, workers, Schedule{Start: start, Rate: cfg.Rate}, measureFrom, end, cfg.Drain)
	}
	marks.Wait() // both marks are out before the result
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("load: run interrupted: %w", err)
	}
	res, err := rec.Result(cfg.Duration)
	if err != nil {
		return Result{}, err
	}
	res.Scenario, res.Mode, res.Clients, res.Customers, res.Started = cfg.Scenario, cfg.Mode, cfg.Clients, cfg.Customers, started
	if cfg.Mode == Open {
		res.Rate, res.NotSent = cfg.Rate, notSent
	}
	return res, nil
}

// newShoppers signs a token for each customer, valid well past the run.
func newShoppers(cfg Config, now time.Time) ([]*Shopper, error) {
	ttl := cfg.Warmup + cfg.Duration + cfg.Drain + time.Hour
	shoppers := make([]*Shopper, cfg.Customers)
	for i := range shoppers {
		customer := CustomerID(cfg.CustomerPrefix, i)
		token, err := auth.Issue(cfg.Auth, customer, "", ttl, now)
		if err != nil {
			return nil, fmt.Errorf("load: token for %s: %w", customer, err)
		}
		shoppers[i] = NewShopper(customer, token)
	}
	return shoppers, nil
}

// runClosed lets every worker send requests back to back until end.
func runClosed(ctx context.Context, workers []*worker, measureFrom, end time.Time) {
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				sent := time.Now()
				if !sent.Before(end) {
					return
				}
				w.step(ctx, sent, !sent.Before(measureFrom))
			}
		})
	}
	wg.Wait()
}

// runOpen sends requests on the schedule until end, worker k of W sending
// requests k, k+W, k+2W, … — each worker is a connection with its share of
// the rate, as in wrk2 — then gives the system until end+drain to finish
// them. A worker whose last request is still out when its next one is due
// sends that one late, timed from when it was due. It returns how many
// measured requests were never sent.
func runOpen(ctx context.Context, workers []*worker, sched Schedule, measureFrom, end time.Time, drain time.Duration) int64 {
	ctx, cancel := context.WithDeadline(ctx, end.Add(drain))
	defer cancel()
	var (
		wg      sync.WaitGroup
		notSent atomic.Int64
	)
	for k, w := range workers {
		wg.Go(func() {
			timer := time.NewTimer(time.Hour) // re-armed before each wait
			defer timer.Stop()
			for at := range sched.Lane(k, len(workers), end) {
				measured := !at.Before(measureFrom)
				if !sleepUntil(ctx, timer, at) {
					if measured {
						notSent.Add(1)
					}
					continue
				}
				w.step(ctx, at, measured)
			}
		})
	}
	wg.Wait()
	return notSent.Load()
}

// mark tells marks when the measured window opens and when it closes.
func mark(ctx context.Context, marks func(Mark), measureFrom, end time.Time) {
	timer := time.NewTimer(time.Hour) // re-armed before each wait
	defer timer.Stop()
	for _, m := range []struct {
		at   time.Time
		mark Mark
	}{{measureFrom, Measuring}, {end, Measured}} {
		if !sleepUntil(ctx, timer, m.at) {
			return
		}
		marks(m.mark)
	}
}

// sleepUntil waits until t; false when ctx ended first (or had ended).
func sleepUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	if ctx.Err() != nil {
		return false
	}
	wait := time.Until(t)
	if wait <= 0 {
		return true
	}
	timer.Reset(wait)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
