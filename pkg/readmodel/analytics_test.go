package readmodel_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// TestHistogramQuantiles: the median and the 90th percentile read from the
// buckets are within DwellRelativeError of the exact ones (nearest rank) of
// random samples, from a few to many, from sub-millisecond to months.
func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 300 {
		n := 1 + rng.IntN([]int{5, 50, 5000}[trial%3])
		samples := make([]time.Duration, n)
		h := readmodel.Histogram{}
		for i := range samples {
			// Log-uniform over 0.1 ms .. 100 days, in whole milliseconds
			// (what the projection measures), zeros included.
			ms := math.Floor(math.Exp(rng.Float64()*math.Log(1e11)) / 10)
			samples[i] = time.Duration(ms) * time.Millisecond
			h[readmodel.DwellBucket(samples[i])]++
		}
		slices.Sort(samples)
		if h.Count() != int64(n) {
			t.Fatalf("count %d, want %d", h.Count(), n)
		}
		for _, q := range []float64{0.5, 0.9, 0.01, 1} {
			exact := samples[max(int(math.Ceil(q*float64(n))), 1)-1]
			got, ok := h.Quantile(q)
			if !ok {
				t.Fatal("no quantile of a histogram with counts")
			}
			if exact == 0 {
				if got != 0 {
					t.Errorf("q%.2f of %d samples = %s, want 0", q, n, got)
				}
				continue
			}
			if rel := math.Abs(float64(got-exact)) / float64(exact); rel > readmodel.DwellRelativeError+1e-6 {
				t.Errorf("q%.2f of %d samples = %s, exact %s: relative error %.4f > %.4f", q, n, got, exact, rel, readmodel.DwellRelativeError)
			}
		}
	}
	if _, ok := (readmodel.Histogram{}).Quantile(0.5); ok {
		t.Error("an empty histogram has a quantile")
	}
}

// TestHistogramBuckets: buckets grow by DwellGrowth, so years fit in a few
// hundred of them.
func TestHistogramBuckets(t *testing.T) {
	if b := readmodel.DwellBucket(10 * 365 * 24 * time.Hour); b > 600 {
		t.Errorf("ten years are bucket %d", b)
	}
	for _, d := range []time.Duration{0, time.Microsecond, 999 * time.Microsecond} {
		if b := readmodel.DwellBucket(d); b != 0 {
			t.Errorf("bucket of %s = %d, want 0", d, b)
		}
	}
	prev := 0
	for ms := int64(1); ms < 1e7; ms = ms*3/2 + 1 {
		b := readmodel.DwellBucket(time.Duration(ms) * time.Millisecond)
		if b < prev {
			t.Fatalf("bucket of %d ms = %d, below the previous %d", ms, b, prev)
		}
		prev = b
	}
}

func TestParseProductAnalytics(t *testing.T) {
	fields := map[string]string{
		readmodel.FieldName: "Mug", readmodel.FieldNameAt: "x", readmodel.FieldAdded: "5", readmodel.FieldAddedToCarts: "4",
		readmodel.FieldRemovedByCustomer: "1", readmodel.FieldRemovedBySystem: "1", readmodel.FieldCheckedOut: "1",
		readmodel.FieldQuantityRaised: "3", readmodel.FieldQuantityLowered: "2",
		readmodel.FieldDwellToCheckout + "100": "1", readmodel.FieldDwellToRemoval + "3": "2", "someday": "7",
	}
	p, err := readmodel.ParseProductAnalytics("456", fields)
	if err != nil {
		t.Fatal(err)
	}
	r := p.Report()
	if r.ProductID != "456" || r.Name != "Mug" || r.Added != 5 || r.AddedToCarts != 4 || r.AddedNeverCheckedOut != 3 ||
		r.RemovedByCustomer != 1 || r.RemovedBySystem != 1 || r.CheckedOut != 1 || r.QuantityRaised != 3 || r.QuantityLowered != 2 {
		t.Errorf("report = %+v", r)
	}
	if r.DwellToCheckout.Count != 1 || r.DwellToRemoval.Count != 2 || r.DwellToCheckout.MedianSeconds == nil ||
		*r.DwellToCheckout.MedianSeconds != math.Round(readmodel.DwellBucketValue(100).Seconds()*1000)/1000 {
		t.Errorf("dwell = %+v %+v", r.DwellToCheckout, r.DwellToRemoval)
	}
	if s := (readmodel.Histogram{}).Summary(); s.Count != 0 || s.MedianSeconds != nil || s.P90Seconds != nil {
		t.Errorf("empty summary = %+v", s)
	}
	for _, bad := range []map[string]string{{readmodel.FieldAdded: "x"}, {readmodel.FieldDwellToRemoval + "x": "1"}} {
		if _, err := readmodel.ParseProductAnalytics("p", bad); err == nil {
			t.Errorf("%v parsed", bad)
		}
	}
}

func TestAnalyticsKeys(t *testing.T) {
	k := readmodel.AnalyticsKeys{Prefix: "cart*:", Generation: 12}
	for _, key := range []string{k.Meta(), k.Products(), k.Product("p"), k.Cart("c")} {
		// One hash tag per generation: a Redis Cluster keeps them in one slot.
		if want := "cart*:analytics:{g12}:"; key[:len(want)] != want {
			t.Errorf("key %q is not under %q", key, want)
		}
	}
	if got, want := k.Pattern(), `cart\*:analytics:{g12}:*`; got != want {
		t.Errorf("pattern = %q, want %q", got, want)
	}
	if got := readmodel.AnalyticsGenerations("cart:"); got != "cart:analytics:generations" {
		t.Errorf("record key = %q", got)
	}
}
