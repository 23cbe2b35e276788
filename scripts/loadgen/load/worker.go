package load

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"
)

// worker is one client: it drives its own customers, one request at a time,
// taking them in turn.
type worker struct {
	api      *API
	mix      Mix
	catalog  []string
	rng      *rand.Rand
	rec      *Recorder
	shoppers []*Shopper
	next     int
}

// step sends the next request of the worker's next customer. sent is when
// it was meant to go out — now in a closed loop, its slot in the schedule in
// an open loop — and its latency is measured from there. Only a measured
// step is recorded (the warm-up is not).
func (w *worker) step(ctx context.Context, sent time.Time, measured bool) {
	s := w.shoppers[w.next]
	w.next = (w.next + 1) % len(w.shoppers)
	act := Next(s, w.mix, w.catalog, w.rng)
	if act.Op == OpRead {
		// A client passes the version of its last write, as the API asks,
		// so that it never reads its cart older than it left it.
		reply, err := w.api.Read(ctx, s.Token, s.CartID, s.Version, false)
		w.record(act.Op, sent, measured, reply, err)
		return
	}
	reply, err := w.api.Command(ctx, s, act)
	done := time.Now()
	if !w.record(act.Op, sent, measured, reply, err) {
		s.Failed()
		return
	}
	// What the probe below must see: the written cart, at the version the
	// command answered (a checkout closes the shopper's cart).
	cartID, version := s.CartID, reply.Version
	if act.Op == OpOpen {
		cartID = reply.CartID
	}
	stale := s.Stale()
	s.Applied(act, reply.CartID, reply.Version)
	if stale && act.Op == OpOpen {
		w.resync(ctx, s)
	}
	// An open that found the customer's cart wrote nothing to wait for.
	wrote := act.Op != OpOpen || reply.Status == http.StatusCreated
	if wrote && w.mix.ReadAfterWrite > 0 && w.rng.Float64() < w.mix.ReadAfterWrite {
		w.probe(ctx, s.Token, cartID, version, done, measured)
	}
}

// record counts one answer; it reports whether the request succeeded.
func (w *worker) record(op Op, sent time.Time, measured bool, reply Reply, err error) bool {
	switch {
	case err != nil:
		if measured {
			w.rec.Fail(op, transportReason(err))
		}
		return false
	case !reply.OK():
		if measured {
			w.rec.Fail(op, reply.Reason())
		}
		return false
	}
	if measured {
		w.rec.OK(op, time.Since(sent))
	}
	return true
}

// probe reads the cart at the version a command just answered and records
// how long after that answer the query service served it: the end-to-end
// visibility lag. ?minVersion makes the service answer as soon as the
// version is there, so one request measures it.
func (w *worker) probe(ctx context.Context, token, cartID string, version int, committed time.Time, measured bool) {
	reply, err := w.api.Read(ctx, token, cartID, version, true)
	lag := time.Since(committed)
	if !measured {
		return
	}
	switch {
	case err != nil:
		w.rec.LagFail(transportReason(err))
	case !reply.OK():
		w.rec.LagFail(reply.Reason())
	case reply.Version < version:
		w.rec.LagFail("older version served")
	default:
		w.rec.Lag(lag)
	}
}

// resync reloads the lines of the shopper's cart from the query side after
// a failed command left them unknown. Unmeasured: it is the load
// generator's bookkeeping, not a customer's request. Without a query
// service the lines are assumed empty; a later command may then be refused.
func (w *worker) resync(ctx context.Context, s *Shopper) {
	if w.api.queryURL == "" {
		s.Resynced(nil, nil)
		return
	}
	reply, err := w.api.Read(ctx, s.Token, s.CartID, s.Version, true)
	if err != nil || !reply.OK() {
		s.Failed() // try again with the next open
		return
	}
	products := make([]string, len(reply.Lines))
	quantities := make([]int, len(reply.Lines))
	for i, l := range reply.Lines {
		products[i], quantities[i] = l.ProductID, l.Quantity
	}
	s.Resynced(products, quantities)
}
