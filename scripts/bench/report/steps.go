package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// What a step of the sustainable rate must hold: every command answered
// on schedule, nothing failed or left unsent, and the lag's tail bounded.
const (
	StepCommandP99Ms = 10.0
	StepLagP99Ms     = 25.0
	// OverloadFactor: a step whose command or lag p50 — the typical
	// request, not a hiccup of a busy machine — is this many times the p99
	// limit, or that left requests unsent, is clearly overloaded: it fell
	// behind its schedule, and the stepping stops without running it again.
	OverloadFactor = 5.0
)

// StepVerdict is how a step fared.
type StepVerdict struct {
	Pass       bool
	Overloaded bool
	// Why lists what failed; empty when it passed.
	Why string
}

// JudgeStep holds an open-loop step to the sustainable rate's criteria.
func JudgeStep(r load.Result) StepVerdict {
	var (
		why        []string
		overloaded bool
		cmd        = r.Commands()
	)
	if cmd.OK == 0 {
		return StepVerdict{Overloaded: true, Why: "no command answered"}
	}
	if p99 := cmd.Latency.P99; p99 > StepCommandP99Ms {
		why = append(why, fmt.Sprintf("command p99 %.1f ms > %g ms", p99, StepCommandP99Ms))
		overloaded = overloaded || cmd.Latency.P50 > OverloadFactor*StepCommandP99Ms
	}
	switch {
	case r.Lag == nil || r.Lag.OK == 0:
		why = append(why, "no lag measured")
	case r.Lag.Latency.P99 > StepLagP99Ms:
		why = append(why, fmt.Sprintf("lag p99 %.1f ms > %g ms", r.Lag.Latency.P99, StepLagP99Ms))
		overloaded = overloaded || r.Lag.Latency.P50 > OverloadFactor*StepLagP99Ms
	}
	if cmd.Failed > 0 {
		why = append(why, fmt.Sprintf("%d commands failed", cmd.Failed))
	}
	if r.Lag != nil && r.Lag.Failed > 0 {
		why = append(why, fmt.Sprintf("%d read-backs failed", r.Lag.Failed))
	}
	if r.NotSent > 0 {
		why = append(why, fmt.Sprintf("%d not sent", r.NotSent))
		overloaded = true
	}
	return StepVerdict{Pass: len(why) == 0, Overloaded: overloaded, Why: strings.Join(why, "; ")}
}

// Sustainable is the highest stepped rate that passed (in any attempt)
// with every lower stepped rate passed too; ok is false when the lowest
// failed or nothing was stepped.
func Sustainable(steps []load.Result) (rate float64, ok bool) {
	passed := map[float64]bool{}
	var rates []float64
	for _, s := range steps {
		if _, seen := passed[s.Rate]; !seen {
			rates = append(rates, s.Rate)
		}
		passed[s.Rate] = passed[s.Rate] || JudgeStep(s).Pass
	}
	slices.Sort(rates)
	for _, r := range rates {
		if !passed[r] {
			break
		}
		rate, ok = r, true
	}
	return rate, ok
}

// StepAt is the last attempt of the step at rate.
func StepAt(steps []load.Result, rate float64) (load.Result, bool) {
	var (
		found load.Result
		ok    bool
	)
	for _, s := range steps {
		if s.Rate == rate {
			found, ok = s, true
		}
	}
	return found, ok
}
