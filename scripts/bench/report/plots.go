package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// The plots' file names, as the report links them.
const (
	PlotWrites    = "writes_throughput.png"
	PlotReads     = "reads_throughput.png"
	PlotLatency   = "latency_percentiles.png"
	PlotLagCDF    = "lag_cdf.png"
	PlotRates     = "rates.png"
	width, height = 7 * vg.Inch, 4.5 * vg.Inch
	// margin keeps the title and the outer tick labels inside the image.
	margin = 10 * vg.Millimeter / 4
)

// Series is one line of a plot. Apart marks a series drawn dashed and left
// out of the axis range (an overloaded run off the scale of the others).
type Series struct {
	Name   string
	Points plotter.XYs
	Apart  bool
}

// Plots draws the report's plots into dir and returns the names of those it
// drew: a plot without data is left out.
func Plots(r Results, dir string) ([]string, error) {
	var drawn []string
	draw := func(name string, p *plot.Plot, series []Series) (err error) {
		if len(series) == 0 {
			return nil
		}
		// gonum/plot panics on data it cannot draw; a plot is not worth the
		// report.
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("report: plot %s: %v", name, v)
			}
		}()
		if err := addSeries(p, series, name != PlotLagCDF); err != nil {
			return fmt.Errorf("report: plot %s: %w", name, err)
		}
		if err := save(p, filepath.Join(dir, name)); err != nil {
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
	cdf, err := lagCDF(r)
	if err != nil {
		return drawn, err
	}
	if err := draw(PlotLagCDF, cdfPlot(cdf), cdf); err != nil {
		return drawn, err
	}
	if err := draw(PlotRates, ratesPlot(r), rateSeries(r)); err != nil {
		return drawn, err
	}
	return drawn, nil
}

// addSeries draws the series: few points (client counts, rates) marked,
// dense curves as lines; a series apart dashed and outside the axis range.
// fit sets the y range to the series not apart (after adding them: adding
// widens the range to every series).
func addSeries(p *plot.Plot, series []Series, fit bool) error {
	var in []Series
	for _, s := range series {
		if !s.Apart {
			in = append(in, s)
		}
	}
	sparse := true
	for _, s := range series {
		sparse = sparse && len(s.Points) <= 16
	}
	for i, s := range series {
		l, err := plotter.NewLine(s.Points)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		l.Dashes = plotutil.Dashes(i)
		if s.Apart {
			l.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
		}
		p.Add(l)
		if !sparse {
			p.Legend.Add(s.Name, l)
			continue
		}
		pts, err := plotter.NewScatter(s.Points)
		if err != nil {
			return err
		}
		pts.Color, pts.Shape = plotutil.Color(i), plotutil.Shape(i)
		p.Add(pts)
		p.Legend.Add(s.Name, l, pts)
	}
	if fit {
		fitRange(p, in, sparse)
	}
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		widenLog(ax)
	}
	return nil
}

// widenLog gives a log axis a positive range that is not a single point
// (one client count, one rate), which gonum/plot cannot draw.
func widenLog(ax *plot.Axis) {
	if _, log := ax.Scale.(plot.LogScale); !log {
		return
	}
	if ax.Max <= 0 || math.IsInf(ax.Max, 0) {
		ax.Max = 1
	}
	if ax.Min <= 0 || math.IsInf(ax.Min, 0) {
		ax.Min = ax.Max / 10
	}
	if ax.Max <= ax.Min*1.01 {
		ax.Min, ax.Max = ax.Min/2, ax.Max*2
	}
}

// fitRange sets the y range to the series that are not apart, with room
// for the legend above them when the points are few.
func fitRange(p *plot.Plot, series []Series, sparse bool) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, pt := range s.Points {
			lo, hi = math.Min(lo, pt.Y), math.Max(hi, pt.Y)
		}
	}
	if math.IsInf(hi, -1) {
		return
	}
	if _, log := p.Y.Scale.(plot.LogScale); log {
		p.Y.Min, p.Y.Max = lo/1.5, hi*4
		return
	}
	if sparse {
		p.Y.Max = 1.35 * hi
	} else {
		p.Y.Max = 1.05 * hi
	}
}

// save draws p with a margin around it, so that nothing is clipped at the
// image's edges.
func save(p *plot.Plot, file string) (err error) {
	c, err := draw.NewFormattedCanvas(width, height, "png")
	if err != nil {
		return err
	}
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(draw.Crop(dc, margin, -margin, margin/2, -margin))
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = c.WriteTo(f)
	return err
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

func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.Add(plotter.NewGrid())
	return p
}

// throughputPlot has clients on a log axis, ticked at the client counts,
// and throughput from 0 with a tick at every round step.
func throughputPlot(title, yLabel string, clients []int) *plot.Plot {
	p := newPlot(title, "concurrent clients (closed loop)", yLabel)
	p.X.Scale = plot.LogScale{}
	ticks := make(plot.ConstantTicks, 0, len(clients))
	for _, c := range clients {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: strconv.Itoa(c)})
	}
	p.X.Tick.Marker = ticks
	p.Y.Min = 0
	p.Y.Tick.Marker = LinearTicks{}
	p.Legend.Top, p.Legend.Left = true, true
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
