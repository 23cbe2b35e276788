package report

import (
	"fmt"
	"math"
	"strconv"

	"gonum.org/v1/plot"
)

// LinearTicks marks a linear axis at round steps (1, 2, 2.5 or 5 times a
// power of ten), five to ten of them, labelled without needless decimals.
type LinearTicks struct{}

var _ plot.Ticker = LinearTicks{}

// Ticks returns the ticks between min and max.
func (LinearTicks) Ticks(min, max float64) []plot.Tick {
	if !(max > min) || math.IsInf(max-min, 0) {
		return []plot.Tick{{Value: min, Label: strconv.FormatFloat(min, 'g', 4, 64)}}
	}
	const intervals = 9 // at most
	raw := (max - min) / intervals
	k := math.Floor(math.Log10(raw))
	mag := math.Pow(10, k)
	step, decimals := 10*mag, int(math.Max(0, -k-1))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw*0.999 {
			step, decimals = m*mag, int(math.Max(0, -k))
			if m == 2.5 {
				decimals = int(math.Max(0, -k+1))
			}
			break
		}
	}
	var ticks []plot.Tick
	for i := math.Ceil(min / step); i*step <= max*(1+1e-12); i++ {
		v := i * step
		ticks = append(ticks, plot.Tick{Value: v, Label: fmt.Sprintf("%.*f", decimals, v)})
		if mid := v + step/2; mid <= max {
			ticks = append(ticks, plot.Tick{Value: mid}) // minor
		}
	}
	return ticks
}

// LogTicks125 marks a log axis at 1, 2 and 5 times each power of ten, with
// minor ticks between; over more than six decades only the powers of ten
// are labelled.
type LogTicks125 struct{}

var _ plot.Ticker = LogTicks125{}

// Ticks returns the ticks between min and max (both positive).
func (LogTicks125) Ticks(min, max float64) []plot.Tick {
	if min <= 0 || !(max > min) {
		return nil
	}
	lo, hi := int(math.Floor(math.Log10(min))), int(math.Ceil(math.Log10(max)))
	wide := hi-lo > 6
	var ticks []plot.Tick
	for k := lo; k <= hi; k++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow10(k)
			if v < min*(1-1e-9) || v > max*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || !wide && (m == 2 || m == 5) {
				t.Label = strconv.FormatFloat(v, 'f', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}
