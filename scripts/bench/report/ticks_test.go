package report

import (
	"slices"
	"testing"

	"gonum.org/v1/plot"
)

func labels(ticks []plot.Tick) []string {
	var out []string
	for _, t := range ticks {
		if !t.IsMinor() {
			out = append(out, t.Label)
		}
	}
	return out
}

func TestLinearTicks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		min, max float64
		want     []string
	}{
		{"OKThroughput", 0, 2900, []string{"0", "500", "1000", "1500", "2000", "2500"}},
		{"OKSmall", 0, 1.6, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2", "1.4", "1.6"}},
		{"OKQuarters", 0, 20, []string{"0.0", "2.5", "5.0", "7.5", "10.0", "12.5", "15.0", "17.5", "20.0"}},
		{"OKOffset", 1234, 5678, []string{"1500", "2000", "2500", "3000", "3500", "4000", "4500", "5000", "5500"}},
		{"OKEmptyRange", 3, 3, []string{"3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := labels(LinearTicks{}.Ticks(tc.min, tc.max)); !slices.Equal(got, tc.want) {
				t.Fatalf("Ticks(%v, %v) = %q, want %q", tc.min, tc.max, got, tc.want)
			}
		})
	}
}

func TestLogTicks125(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		min, max float64
		want     []string
	}{
		{"OKLag", 0.5, 120, []string{"0.5", "1", "2", "5", "10", "20", "50", "100"}},
		{"OKWithinADecade", 3, 8, []string{"5"}},
		{"OKWideOnlyPowers", 0.001, 100_000, []string{"0.001", "0.01", "0.1", "1", "10", "100", "1000", "10000", "100000"}},
		{"ErrNotPositive", 0, 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ticks := LogTicks125{}.Ticks(tc.min, tc.max)
			if got := labels(ticks); !slices.Equal(got, tc.want) {
				t.Fatalf("Ticks(%v, %v) = %q, want %q", tc.min, tc.max, got, tc.want)
			}
			for _, tk := range ticks {
				if tk.Value < tc.min*0.999 || tk.Value > tc.max*1.001 {
					t.Errorf("tick %v outside [%v, %v]", tk.Value, tc.min, tc.max)
				}
			}
		})
	}
}
