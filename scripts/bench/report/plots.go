package report

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// The plots' file names, as the report links them.
const (
	PlotWrites    = "writes_throughput.png"
	PlotReads     = "reads_throughput.png"
	PlotLatency   = "latency_percentiles.png"
	PlotLagCDF    = "lag_cdf.png"
	width, height = 7 * vg.Inch, 4.5 * vg.Inch
)

// Series is one line of a plot.
type Series struct {
	Name   string
	Points plotter.XYs
}

// Plots draws the report's plots into dir and returns the names of those it
// drew: a plot without data is left out.
func Plots(r Results, dir string) ([]string, error) {
	var drawn []string
	// Few points (client counts) are marked; dense curves are lines.
	draw := func(name string, p *plot.Plot, series []Series) error {
		if len(series) == 0 {
			return nil
		}
		args := make([]any, 0, 2*len(series))
		sparse := true
		for _, s := range series {
			args = append(args, s.Name, s.Points)
			sparse = sparse && len(s.Points) <= 16
		}
		add := plotutil.AddLines
		if sparse {
			add = plotutil.AddLinePoints
			headroom(p, series)
		}
		if err := add(p, args...); err != nil {
			return fmt.Errorf("report: plot %s: %w", name, err)
		}
		if err := p.Save(width, height, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("report: plot %s: %w", name, err)
		}
		drawn = append(drawn, name)
		return nil
	}

	writes := []Series{
		pgbenchSeries(r, ScriptAppend, "PostgreSQL: append (pgbench)"),
		pgbenchSeries(r, ScriptLoadAppend, "PostgreSQL: load + append (pgbench)"),
		loadSeries(r.Commands, commands, "command service"),
	}
	if err := draw(PlotWrites, throughputPlot("Writes: durable commands vs raw PostgreSQL", "transactions or commands / s", r.Settings.Clients),
		nonEmpty(writes)); err != nil {
		return drawn, err
	}
	readSeries := []Series{
		loadSeries(r.RawReads, reads, "bare echo + Redis GET"),
		loadSeries(r.Reads, reads, "query service"),
	}
	if err := draw(PlotReads, throughputPlot("Reads: query service vs raw Redis read", "reads / s", r.Settings.Clients),
		nonEmpty(readSeries)); err != nil {
		return drawn, err
	}

	spectra, err := latencySpectra(r)
	if err != nil {
		return drawn, err
	}
	if err := draw(PlotLatency, spectrumPlot(), spectra); err != nil {
		return drawn, err
	}
	cdf, err := lagCDF(r.Lag)
	if err != nil {
		return drawn, err
	}
	if err := draw(PlotLagCDF, cdfPlot(r.Settings.LagRate), cdf); err != nil {
		return drawn, err
	}
	return drawn, nil
}

// headroom raises the y axis above the highest point, so that the legend in
// the top corner does not cover the data.
func headroom(p *plot.Plot, series []Series) {
	top := 0.0
	for _, s := range series {
		for _, pt := range s.Points {
			top = math.Max(top, pt.Y)
		}
	}
	p.Y.Max = 1.35 * top
}

func nonEmpty(series []Series) []Series {
	return slices.DeleteFunc(series, func(s Series) bool { return len(s.Points) == 0 })
}

func pgbenchSeries(r Results, script, name string) Series {
	s := Series{Name: name}
	for _, run := range r.PGBench {
		if run.Script == script {
			s.Points = append(s.Points, plotter.XY{X: float64(run.Clients), Y: run.TPS})
		}
	}
	return s
}

func loadSeries(runs []load.Result, stats func(load.Result) load.Stats, name string) Series {
	s := Series{Name: name}
	for _, run := range runs {
		s.Points = append(s.Points, plotter.XY{X: float64(run.Clients), Y: stats(run).Throughput})
	}
	return s
}

// throughputPlot has clients on a log axis, ticked at the client counts.
func throughputPlot(title, yLabel string, clients []int) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "concurrent clients (closed loop)"
	p.Y.Label.Text = yLabel
	p.X.Scale = plot.LogScale{}
	ticks := make(plot.ConstantTicks, 0, len(clients))
	for _, c := range clients {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: strconv.Itoa(c)})
	}
	p.X.Tick.Marker = ticks
	p.Y.Min = 0
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	return p
}

// latencySpectra are the latency percentile spectra of the open-loop runs
// at half load and of the lag run.
func latencySpectra(r Results) ([]Series, error) {
	var out []Series
	add := func(name string, run *load.Result, stats func(load.Result) load.Stats) error {
		if run == nil || stats(*run).OK == 0 {
			return nil
		}
		h, err := stats(*run).DecodeHistogram()
		if err != nil {
			return err
		}
		s := Series{Name: fmt.Sprintf(name, run.Rate)}
		for _, q := range QuantileGrid(h.TotalCount()) {
			s.Points = append(s.Points, plotter.XY{X: nines(q), Y: msAt(h, q)})
		}
		out = append(out, s)
		return nil
	}
	if err := add("commands at %.0f/s", r.CommandsHalf, commands); err != nil {
		return nil, err
	}
	if err := add("query reads at %.0f/s", r.ReadsHalf, reads); err != nil {
		return nil, err
	}
	if err := add("commands at %.0f/s in the lag run", r.Lag, commands); err != nil {
		return nil, err
	}
	return out, nil
}

// spectrumPlot has percentiles on a "nines" axis (50 %, 90 %, 99 %, …) and
// latency on a log axis: the tail gets the room it deserves.
func spectrumPlot() *plot.Plot {
	p := plot.New()
	p.Title.Text = "Latency by percentile (open loop, timed from the intended send)"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Tick.Marker = plot.ConstantTicks{
		{Value: 0, Label: "0%"}, {Value: nines(50), Label: "50%"}, {Value: nines(90), Label: "90%"},
		{Value: nines(99), Label: "99%"}, {Value: nines(99.9), Label: "99.9%"}, {Value: nines(99.99), Label: "99.99%"},
	}
	// Latency rises to the right: the bottom right corner is free.
	p.Legend.Top, p.Legend.Left = false, false
	p.Add(plotter.NewGrid())
	return p
}

// lagCDF is the cumulative distribution of the visibility lag.
func lagCDF(run *load.Result) ([]Series, error) {
	if run == nil || run.Lag == nil || run.Lag.OK == 0 {
		return nil, nil
	}
	h, err := run.Lag.DecodeHistogram()
	if err != nil {
		return nil, err
	}
	s := Series{Name: fmt.Sprintf("command 2xx → query serves that version (%d samples)", h.TotalCount())}
	for _, q := range QuantileGrid(h.TotalCount()) {
		s.Points = append(s.Points, plotter.XY{X: msAt(h, q), Y: q / 100})
	}
	return []Series{s}, nil
}

func cdfPlot(rate float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("End-to-end visibility lag at %.0f commands/s (open loop)", rate)
	p.X.Label.Text = "lag (ms)"
	p.Y.Label.Text = "fraction of commands visible"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	// The curve ends high on the right: the bottom right corner is free.
	p.Legend.Top, p.Legend.Left = false, false
	p.Add(plotter.NewGrid())
	return p
}

// QuantileGrid is the percentiles at which a histogram of n values is
// drawn: every percent up to 90, then ever finer towards the tail, ten per
// decade of "nines", up to the last value that n samples resolve.
func QuantileGrid(n int64) []float64 {
	if n <= 0 {
		return nil
	}
	var qs []float64
	for q := 0; q < 90; q++ {
		qs = append(qs, float64(q))
	}
	top := math.Log10(float64(n)) // the deepest tail n values can show
	for x := 1.0; x <= top+1e-9; x += 0.1 {
		qs = append(qs, 100*(1-math.Pow(10, -x)))
	}
	return qs
}

// nines maps a percentile to its number of nines: 90 → 1, 99 → 2.
func nines(q float64) float64 { return -math.Log10(1 - q/100) }

// msAt is h's value at percentile q in milliseconds, at least a microsecond
// (log axes need positive values).
func msAt(h *hdr.Histogram, q float64) float64 {
	return math.Max(float64(h.ValueAtQuantile(q)), 1) / 1000
}
