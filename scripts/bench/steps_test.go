package main

import (
	"slices"
	"testing"

	"github.com/cart-cqrs/cart/scripts/bench/report"
)

func TestStepper(t *testing.T) {
	pass := report.StepVerdict{Pass: true}
	fail := report.StepVerdict{Why: "command p99 12 ms > 10 ms"}
	over := report.StepVerdict{Overloaded: true, Why: "400 not sent"}
	type run struct {
		rate    float64
		attempt int
	}
	for _, tc := range []struct {
		name     string
		rates    []float64
		required []float64
		verdicts map[run]report.StepVerdict // pass when absent
		want     []run
	}{
		{
			name:  "OKEveryRatePasses",
			rates: []float64{50, 250, 500, 1000}, required: []float64{50, 500, 1000},
			want: []run{{50, 1}, {250, 1}, {500, 1}, {1000, 1}},
		},
		{
			name:  "OKAFailedStepRunsAgainAndPasses",
			rates: []float64{50, 500, 1000, 2000}, required: []float64{50, 500, 1000},
			verdicts: map[run]report.StepVerdict{{500, 1}: fail},
			want:     []run{{50, 1}, {500, 1}, {500, 2}, {1000, 1}, {2000, 1}},
		},
		{
			name:  "StopsAfterTwoFailures",
			rates: []float64{50, 500, 1000, 1500, 2000}, required: []float64{50, 500, 1000},
			verdicts: map[run]report.StepVerdict{{1500, 1}: fail, {1500, 2}: fail},
			want:     []run{{50, 1}, {500, 1}, {1000, 1}, {1500, 1}, {1500, 2}},
		},
		{
			name:  "StopsAtOnceWhenOverloaded",
			rates: []float64{50, 500, 1000, 1500, 2000}, required: []float64{50, 500, 1000},
			verdicts: map[run]report.StepVerdict{{1500, 1}: over},
			want:     []run{{50, 1}, {500, 1}, {1000, 1}, {1500, 1}},
		},
		{
			name:  "RequiredRatesRunOnceAfterTheStop",
			rates: []float64{50, 250, 500, 1000, 1500}, required: []float64{50, 500, 1000},
			verdicts: map[run]report.StepVerdict{{250, 1}: fail, {250, 2}: fail, {500, 1}: fail, {1000, 1}: over},
			want:     []run{{50, 1}, {250, 1}, {250, 2}, {500, 1}, {1000, 1}},
		},
		{
			name:  "OKUnsortedAndRepeatedRates",
			rates: []float64{1000, 50, 500, 50}, required: []float64{50},
			want: []run{{50, 1}, {500, 1}, {1000, 1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStepper(tc.rates, tc.required)
			var got []run
			for {
				rate, attempt, ok := s.next()
				if !ok {
					break
				}
				r := run{rate, attempt}
				got = append(got, r)
				if len(got) > 20 {
					t.Fatalf("no end: %v", got)
				}
				v, ok := tc.verdicts[r]
				if !ok {
					v = pass
				}
				s.record(v)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ran %v, want %v", got, tc.want)
			}
		})
	}
}
