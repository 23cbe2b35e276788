package report

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// The plots of the open-loop steps: latency by percentile, the lag's
// distribution, and latency and lag against the rate.

// latencySpectra are the latency percentile spectra of the query service
// at half load and of the commands of the idle, half and lag-rate steps; a
// step that was overloaded is drawn apart, off the scale of the others.
func latencySpectra(r Results) ([]Series, error) {
	var out []Series
	add := func(name string, run load.Result, stats func(load.Result) load.Stats, apart bool) error {
		if stats(run).OK == 0 {
			return nil
		}
		h, err := stats(run).DecodeHistogram()
		if err != nil {
			return err
		}
		s := Series{Name: name, Apart: apart}
		if apart {
			s.Name += fmt.Sprintf(" — overloaded, p50 %.0f ms", stats(run).Latency.P50)
		}
		for _, q := range QuantileGrid(h.TotalCount()) {
			s.Points = append(s.Points, plotter.XY{X: nines(q), Y: msAt(h, q)})
		}
		out = append(out, s)
		return nil
	}
	if r.ReadsHalf != nil {
		if err := add(fmt.Sprintf("query reads at %.0f/s", r.ReadsHalf.Rate), *r.ReadsHalf, reads, false); err != nil {
			return nil, err
		}
	}
	for _, rate := range lagRates(r) {
		if run, ok := StepAt(r.Steps, rate); ok {
			if err := add(fmt.Sprintf("commands at %s/s", rateText(rate)), run, commands, JudgeStep(run).Overloaded); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// lagRates are the rates of the lag targets: idle, half and the lag rate.
func lagRates(r Results) []float64 {
	return []float64{r.Settings.IdleRate, r.Settings.LagRate / 2, r.Settings.LagRate}
}

// spectrumPlot has percentiles on a "nines" axis (50 %, 90 %, 99 %, …) and
// latency on a log axis: the tail gets the room it deserves.
func spectrumPlot() *plot.Plot {
	p := newPlot("Latency by percentile (open loop, timed from the intended send)", "percentile", "latency (ms)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = LogTicks125{}
	p.X.Tick.Marker = plot.ConstantTicks{
		{Value: 0, Label: "0%"}, {Value: nines(90), Label: "90%"},
		{Value: nines(99), Label: "99%"}, {Value: nines(99.9), Label: "99.9%"}, {Value: nines(99.99), Label: "99.99%"},
	}
	// Latency rises to the right: the bottom right corner is free.
	p.Legend.Top, p.Legend.Left = false, false
	return p
}

// lagCDF is the cumulative distribution of the visibility lag at the idle,
// half and lag rates.
func lagCDF(r Results) ([]Series, error) {
	var out []Series
	for _, rate := range lagRates(r) {
		run, ok := StepAt(r.Steps, rate)
		if !ok || run.Lag == nil || run.Lag.OK == 0 {
			continue
		}
		h, err := run.Lag.DecodeHistogram()
		if err != nil {
			return nil, err
		}
		s := Series{Name: fmt.Sprintf("%s/s (%d samples)", rateText(rate), h.TotalCount())}
		for _, q := range QuantileGrid(h.TotalCount()) {
			s.Points = append(s.Points, plotter.XY{X: msAt(h, q), Y: q / 100})
		}
		s.Points = append(s.Points, plotter.XY{X: math.Max(float64(h.Max()), 1) / 1000, Y: 1})
		out = append(out, s)
	}
	return out, nil
}

// cdfPlot leaves room right of the slowest curve for the legend: there
// every curve is at 1.
func cdfPlot(series []Series) *plot.Plot {
	p := newPlot("Visibility lag: command 2xx → query serves that version (open loop)", "lag (ms)", "fraction of commands visible")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = LogTicks125{}
	p.Y.Min, p.Y.Max = 0, 1
	p.Y.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "0"}, {Value: 0.25, Label: "0.25"}, {Value: 0.5, Label: "0.5"},
		{Value: 0.75, Label: "0.75"}, {Value: 0.9, Label: "0.9"}, {Value: 0.99}, {Value: 1, Label: "1"}}
	// Every curve is at 1 on the right: the bottom right corner is free.
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.YOffs = vg.Points(4)
	top := 0.0
	for _, s := range series {
		for _, pt := range s.Points {
			top = math.Max(top, pt.X)
		}
	}
	p.X.Max = 8 * top
	return p
}

// rateSeries are the command p99 and the lag p50 and p99 of each step (its
// last attempt) against its rate.
func rateSeries(r Results) []Series {
	cmd := Series{Name: "command p99"}
	p50 := Series{Name: "lag p50"}
	p99 := Series{Name: "lag p99"}
	for _, rate := range steppedRates(r) {
		s, ok := StepAt(r.Steps, rate)
		if !ok {
			continue
		}
		if c := s.Commands(); c.OK > 0 {
			cmd.Points = append(cmd.Points, plotter.XY{X: rate, Y: math.Max(c.Latency.P99, 0.01)})
		}
		if s.Lag != nil && s.Lag.OK > 0 {
			p50.Points = append(p50.Points, plotter.XY{X: rate, Y: math.Max(s.Lag.Latency.P50, 0.01)})
			p99.Points = append(p99.Points, plotter.XY{X: rate, Y: math.Max(s.Lag.Latency.P99, 0.01)})
		}
	}
	return nonEmpty([]Series{cmd, p50, p99})
}

func ratesPlot(r Results) *plot.Plot {
	p := newPlot("Open-loop steps: latency and visibility lag against the command rate", "commands / s scheduled (open loop, each read back)", "ms (log)")
	p.X.Scale = plot.LogScale{}
	var ticks plot.ConstantTicks
	for _, rate := range steppedRates(r) {
		ticks = append(ticks, plot.Tick{Value: rate, Label: shortRate(rate)})
	}
	p.X.Tick.Marker = ticks
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = LogTicks125{}
	p.Y.Min = 0.5
	// The limits of a step, as horizontal lines.
	for _, lim := range []struct {
		ms   float64
		name string
	}{{StepCommandP99Ms, "command p99 limit"}, {StepLagP99Ms, "lag p99 limit"}} {
		l, err := plotter.NewLine(plotter.XYs{{X: firstRate(r), Y: lim.ms}, {X: lastRate(r), Y: lim.ms}})
		if err == nil {
			l.Color = color.Gray{Y: 120}
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			p.Add(l)
			p.Legend.Add(fmt.Sprintf("%s (%g ms)", lim.name, lim.ms), l)
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p
}

// steppedRates are the rates that ran, in order.
func steppedRates(r Results) []float64 {
	var rates []float64
	for _, s := range r.Steps {
		rates = append(rates, s.Rate)
	}
	slices.Sort(rates)
	return slices.Compact(rates)
}

func firstRate(r Results) float64 {
	if rates := steppedRates(r); len(rates) > 0 {
		return rates[0]
	}
	return 1
}

func lastRate(r Results) float64 {
	if rates := steppedRates(r); len(rates) > 0 {
		return rates[len(rates)-1]
	}
	return 1
}

// shortRate labels a rate briefly: 500, 1.5k, 8k.
func shortRate(rate float64) string {
	if rate >= 1000 {
		return strconv.FormatFloat(rate/1000, 'f', -1, 64) + "k"
	}
	return rateText(rate)
}
