package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/report"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// commands drives the command service closed loop at each client count,
// measuring the CPU time of every process over each run's window, and
// profiling the command service during each run, keeping the profile of
// the best one.
func (b *bench) commands(ctx context.Context, st *stack, m *meter) error {
	prof := newProfiler(ctx, b.work, st.debugURL(report.ServiceCommand))
	if !prof.available() {
		b.note("No CPU profile: the command service serves no /debug/pprof and perf is not installed.")
	}
	best := 0.0
	for _, c := range b.cfg.Clients {
		spec := loadSpec{
			name: fmt.Sprintf("commands, %d clients", c), scenario: "commands", mode: load.Closed, clients: c,
			commandURL: st.url(report.ServiceCommand), queryURL: st.url(report.ServiceQuery),
		}
		var (
			profile *report.Profile
			perr    error
			wg      sync.WaitGroup
		)
		pctx, cancel := context.WithCancel(ctx)
		if prof.available() {
			p := st.running[report.ServiceCommand]
			wg.Go(func() {
				profile, perr = prof.capture(pctx, spec.name, p.Pid(), st.binary(report.ServiceCommand), st.debugURL(report.ServiceCommand),
					b.cfg.Warmup, b.cfg.Duration-time.Second)
			})
		}
		res, u, err := b.measuredLoad(ctx, m, spec, report.Usage{Kind: report.WindowClosed, Clients: c})
		if err != nil {
			cancel() // no profile of a failed run
		}
		wg.Wait()
		cancel()
		if err != nil {
			b.failedRun(err)
			continue
		}
		b.res.Commands = append(b.res.Commands, res)
		b.res.Usage = append(b.res.Usage, u)
		b.say("    %.0f µs of CPU per command, every process of the system", u.PerUnit(u.System()))
		if t := res.Commands().Throughput; t > best {
			best = t
			if perr != nil {
				b.note(fmt.Sprintf("CPU profile during %s failed: %v", spec.name, perr))
			}
			if profile != nil {
				b.res.Profile = profile
			}
		}
	}
	if best == 0 {
		return errors.New("no command succeeded")
	}
	return nil
}

// reads drives the query service closed loop at each client count over the
// same prepared carts, then open loop at half the best throughput.
func (b *bench) reads(ctx context.Context, st *stack) error {
	readers := fmt.Sprintf("bench-%s-reader", b.runID)
	spec := func(name string, mode load.Mode, clients int, rate float64) loadSpec {
		// The same customers every run: the first run prepares their carts,
		// the others find them open.
		return loadSpec{name: name, scenario: "reads", mode: mode, clients: clients, rate: rate,
			commandURL: st.url(report.ServiceCommand), queryURL: st.url(report.ServiceQuery),
			customers: b.cfg.ReadCarts, prefix: readers}
	}
	best := 0.0
	for _, c := range b.cfg.Clients {
		res, err := b.runLoad(ctx, spec(fmt.Sprintf("query reads, %d clients", c), load.Closed, c, 0))
		if err != nil {
			b.failedRun(err)
			continue
		}
		b.res.Reads = append(b.res.Reads, res)
		best = max(best, res.Reads().Throughput)
	}
	if best == 0 {
		return errors.New("no read succeeded")
	}
	half, err := b.runLoad(ctx, spec(fmt.Sprintf("query reads, open loop at %.0f/s (half the best)", best/2), load.Open, b.cfg.openClients(), best/2))
	if err != nil {
		return err
	}
	b.res.ReadsHalf = &half
	return nil
}

// mix runs a shop's mix at the client count where commands went fastest.
func (b *bench) mix(ctx context.Context, st *stack) error {
	clients := b.cfg.Clients[len(b.cfg.Clients)/2]
	if best, ok := report.BestOf(b.res.Commands, load.Result.Commands); ok {
		clients = best.Clients
	}
	res, err := b.runLoad(ctx, loadSpec{
		name: fmt.Sprintf("a shop's mix, %d clients", clients), scenario: "mix", mode: load.Closed, clients: clients,
		commandURL: st.url(report.ServiceCommand), queryURL: st.url(report.ServiceQuery),
	})
	if err != nil {
		return err
	}
	b.res.Mix = &res
	return nil
}
