package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/report"
	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// maxAttempts is how often a failing step runs before the stepping stops:
// once more, since a shared machine has noisy seconds.
const maxAttempts = 2

// stepper plans the open-loop steps: the rates from the lowest up; a step
// that fails runs once more unless it was clearly overloaded; once a rate
// has failed for good the stepping stops, but the required rates left (the
// targets' lag rates) still run, once each.
type stepper struct {
	rates    []float64
	required []float64
	i        int
	attempt  int // runs of rates[i] so far
	stopped  bool
}

func newStepper(rates, required []float64) *stepper {
	rates = slices.Clone(rates)
	slices.Sort(rates)
	return &stepper{rates: slices.Compact(rates), required: required}
}

// next is the rate to run and its attempt (1, 2); false when done.
func (s *stepper) next() (rate float64, attempt int, ok bool) {
	for ; s.i < len(s.rates); s.i++ {
		if !s.stopped || slices.Contains(s.required, s.rates[s.i]) {
			return s.rates[s.i], s.attempt + 1, true
		}
	}
	return 0, 0, false
}

// record takes the verdict of the step next gave.
func (s *stepper) record(v report.StepVerdict) {
	s.attempt++
	if !v.Pass && !v.Overloaded && !s.stopped && s.attempt < maxAttempts {
		return // the same rate once more
	}
	if !v.Pass {
		s.stopped = true
	}
	s.i, s.attempt = s.i+1, 0
}

// steps runs the open-loop steps of the sustainable rate: commands at a
// fixed rate, each read back with ?minVersion, the CPU per command of each.
func (b *bench) steps(ctx context.Context, st *stack, m *meter) error {
	plan := newStepper(b.cfg.steppedRates(), b.cfg.requiredRates())
	for {
		rate, attempt, ok := plan.next()
		if !ok {
			break
		}
		name := fmt.Sprintf("step: %g commands/s, open loop, each read back", rate)
		if attempt > 1 {
			name += " (again)"
		}
		// One customer per client: at a low rate, eight each would spend
		// the whole run opening carts; one each goes through whole carts.
		clients := b.cfg.stepClients(rate)
		res, u, err := b.measuredLoad(ctx, m, loadSpec{
			name: name, scenario: "lag", mode: load.Open, clients: clients, customers: clients, rate: rate,
			commandURL: st.url(report.ServiceCommand), queryURL: st.url(report.ServiceQuery),
		}, report.Usage{Kind: report.WindowStep, Rate: rate, Attempt: attempt})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.failedRun(err)
			plan.record(report.StepVerdict{Overloaded: true, Why: err.Error()})
			continue
		}
		b.res.Steps = append(b.res.Steps, res)
		b.res.Usage = append(b.res.Usage, u)
		v := report.JudgeStep(res)
		plan.record(v)
		switch {
		case v.Pass:
			b.say("    pass; %.0f µs of CPU per command", u.PerUnit(u.System()))
		case v.Overloaded:
			b.say("    OVERLOADED: %s", v.Why)
		default:
			b.say("    failed: %s", v.Why)
		}
	}
	if len(b.res.Steps) == 0 {
		return errors.New("no step ran")
	}
	if rate, ok := report.Sustainable(b.res.Steps); ok {
		b.say("sustainable rate: %g commands/s", rate)
	} else {
		b.say("sustainable rate: below the lowest step")
	}
	return nil
}

// idleWindow is how long the system is measured doing nothing.
const idleWindow = 3 * time.Second

// idle measures the system's CPU time with no load at all: what its
// timers and polling loops cost, which every command at a low rate pays.
func (b *bench) idle(ctx context.Context, m *meter) error {
	b.say("idle: the system without load for %v", idleWindow)
	start := m.read(ctx, 0, true)
	select {
	case <-time.After(idleWindow):
	case <-ctx.Done():
		return ctx.Err()
	}
	u := usage(start, m.read(ctx, 0, false), m.hz, report.WindowIdle, 0, "second")
	b.res.Usage = append(b.res.Usage, u)
	b.say("    %.0f%% of a CPU, every process of the system", 100*u.System()/u.Seconds)
	return nil
}
