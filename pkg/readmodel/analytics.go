package readmodel

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The product analytics projection (the projector writes it, the query
// service serves it) keeps one hash per product and generation. Its keys
// carry the generation as the hash tag {g<N>}, so that every key one write
// touches (the products of a cart, the cart's state, the generation's
// marker) lies in one slot of a Redis Cluster.

// AnalyticsKeys names the keys of one generation of the product analytics,
// the counting projection "analytics" of products.
type AnalyticsKeys struct {
	Prefix     string
	Generation int
}

// Counter is the same keys as a counting projection's.
func (k AnalyticsKeys) Counter() CounterKeys {
	return CounterKeys{Prefix: k.Prefix, Projection: "analytics", Counted: "product", Generation: k.Generation}
}

// Meta is the generation's meta hash (CounterKeys.Meta).
func (k AnalyticsKeys) Meta() string { return k.Counter().Meta() }

// Products is the set of the product ids the generation has a hash for.
func (k AnalyticsKeys) Products() string { return k.Counter().Members() }

// Product is the hash of one product's counters and dwell histograms
// (the Field… constants).
func (k AnalyticsKeys) Product(productID string) string { return k.Counter().Member(productID) }

// Cart is the projection's own state of one cart (its version, its open
// lines, the products ever added to it); only the projector reads it.
func (k AnalyticsKeys) Cart(cartID string) string { return k.Counter().Cart(cartID) }

// Pattern is the SCAN MATCH pattern of every key of the generation.
func (k AnalyticsKeys) Pattern() string { return k.Counter().Pattern() }

// AnalyticsGenerations is the hash saying which analytics generations
// exist: AnalyticsCurrent (the one readers use; absent until the first
// build finished), AnalyticsBuilding, AnalyticsPrevious (kept up to date
// while readers drain off it) and AnalyticsDropping.
func AnalyticsGenerations(prefix string) string { return Generations(prefix, "analytics") }

// Fields of the AnalyticsGenerations hash.
const (
	AnalyticsCurrent  = "current"
	AnalyticsBuilding = "building"
	AnalyticsPrevious = "previous"
	// AnalyticsDropping is a generation no longer listed whose keys are
	// being deleted.
	AnalyticsDropping = "dropping"
	// AnalyticsSequence numbers the generations, so that none is reused.
	AnalyticsSequence = "sequence"
)

// Fields of a generation's Meta hash.
const (
	// AnalyticsFieldStartedAt is when the build began (RFC 3339).
	AnalyticsFieldStartedAt = "startedAt"
	// AnalyticsFieldBuiltAt is when the build had read the whole event log
	// (RFC 3339); absent while it builds.
	AnalyticsFieldBuiltAt = "builtAt"
)

// AnalyticsGeneration is a generation of the product analytics as readers
// see it: Number 0 means none was built yet.
type AnalyticsGeneration struct {
	Number  int
	BuiltAt time.Time
}

// Fields of a product hash: counters, then the name with the sort key of
// the event it came from (the latest item-added wins, whatever order the
// carts were projected in), then the histogram buckets, named
// FieldDwellToCheckout or FieldDwellToRemoval followed by the bucket index.
const (
	FieldAdded             = "added"
	FieldAddedToCarts      = "addedToCarts"
	FieldRemovedByCustomer = "removedByCustomer"
	FieldRemovedBySystem   = "removedBySystem"
	FieldCheckedOut        = "checkedOut"
	FieldQuantityRaised    = "quantityRaised"
	FieldQuantityLowered   = "quantityLowered"
	FieldName              = "name"
	FieldNameAt            = "nameAt"
	FieldDwellToCheckout   = "dwellToCheckout:"
	FieldDwellToRemoval    = "dwellToRemoval:"
)

// DwellGrowth is the ratio between the bounds of consecutive dwell
// histogram buckets: bucket b >= 1 holds the durations of (γ^(b-2), γ^(b-1)]
// milliseconds, bucket 0 those under a millisecond. Ten years take about
// 540 buckets, and a histogram stores only the buckets it has counts in.
const DwellGrowth = 1.05

// DwellRelativeError bounds the error of a quantile read from a histogram:
// (γ-1)/(γ+1), about 2.44% of the exact value (in whole milliseconds).
const DwellRelativeError = (DwellGrowth - 1) / (DwellGrowth + 1)

var logGrowth = math.Log(DwellGrowth)

// DwellBucket is the histogram bucket of a duration.
func DwellBucket(d time.Duration) int {
	ms := d.Milliseconds()
	if ms < 1 {
		return 0
	}
	return 1 + int(math.Ceil(math.Log(float64(ms))/logGrowth))
}

// DwellBucketValue is the duration a bucket stands for in quantiles: the
// value whose relative distance to both of the bucket's bounds is
// DwellRelativeError, so no duration of the bucket is further from it.
func DwellBucketValue(b int) time.Duration {
	if b < 1 {
		return 0
	}
	ms := 2 * math.Pow(DwellGrowth, float64(b-1)) / (DwellGrowth + 1)
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

// Histogram is a dwell histogram: count per bucket.
type Histogram map[int]int64

// Count is the number of durations in the histogram.
func (h Histogram) Count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile is the q-quantile (0 < q <= 1) by nearest rank: the value of
// the bucket holding the ceil(q·count)-th smallest duration. ok is false
// for an empty histogram.
func (h Histogram) Quantile(q float64) (d time.Duration, ok bool) {
	n := h.Count()
	if n == 0 {
		return 0, false
	}
	rank := max(int64(math.Ceil(q*float64(n))), 1)
	buckets := make([]int, 0, len(h))
	for b, c := range h {
		if c > 0 {
			buckets = append(buckets, b)
		}
	}
	slices.Sort(buckets)
	var seen int64
	for _, b := range buckets {
		seen += h[b]
		if seen >= rank {
			return DwellBucketValue(b), true
		}
	}
	return DwellBucketValue(buckets[len(buckets)-1]), true
}

// ProductAnalytics is one product's hash, read.
type ProductAnalytics struct {
	ProductID string
	Name      string
	// NameAt is the sort key of the item-added event Name was taken from.
	NameAt                             string
	Added, AddedToCarts                int64
	RemovedByCustomer, RemovedBySystem int64
	CheckedOut                         int64
	QuantityRaised, QuantityLowered    int64
	DwellToCheckout, DwellToRemoval    Histogram
}

// AddedNeverCheckedOut is how many carts the product was added to and that
// did not buy it: it was removed before the checkout, or the cart is still
// open.
func (p ProductAnalytics) AddedNeverCheckedOut() int64 { return p.AddedToCarts - p.CheckedOut }

// ParseProductAnalytics reads a product hash (HGETALL).
func ParseProductAnalytics(productID string, fields map[string]string) (ProductAnalytics, error) {
	p := ProductAnalytics{ProductID: productID, DwellToCheckout: Histogram{}, DwellToRemoval: Histogram{}}
	counters := map[string]*int64{
		FieldAdded: &p.Added, FieldAddedToCarts: &p.AddedToCarts, FieldRemovedByCustomer: &p.RemovedByCustomer,
		FieldRemovedBySystem: &p.RemovedBySystem, FieldCheckedOut: &p.CheckedOut,
		FieldQuantityRaised: &p.QuantityRaised, FieldQuantityLowered: &p.QuantityLowered,
	}
	for f, v := range fields {
		switch f {
		case FieldName:
			p.Name = v
			continue
		case FieldNameAt:
			p.NameAt = v
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return ProductAnalytics{}, fmt.Errorf("readmodel: product %s: field %s: %w", productID, f, err)
		}
		if c, ok := counters[f]; ok {
			*c = n
			continue
		}
		h, rest := p.DwellToCheckout, ""
		switch {
		case strings.HasPrefix(f, FieldDwellToCheckout):
			rest = f[len(FieldDwellToCheckout):]
		case strings.HasPrefix(f, FieldDwellToRemoval):
			h, rest = p.DwellToRemoval, f[len(FieldDwellToRemoval):]
		default:
			continue // a field a later version added
		}
		b, err := strconv.Atoi(rest)
		if err != nil || b < 0 {
			return ProductAnalytics{}, fmt.Errorf("readmodel: product %s: field %s is not a histogram bucket", productID, f)
		}
		h[b] = n
	}
	return p, nil
}

// DwellSummary is a dwell distribution as the API serves it. The quantiles
// are absent when Count is 0.
type DwellSummary struct {
	Count         int64    `json:"count"`
	MedianSeconds *float64 `json:"medianSeconds,omitempty"`
	P90Seconds    *float64 `json:"p90Seconds,omitempty"`
}

// Summary is the histogram's count, median and 90th percentile, in
// seconds rounded to the millisecond.
func (h Histogram) Summary() DwellSummary {
	s := DwellSummary{Count: h.Count()}
	seconds := func(q float64) *float64 {
		d, ok := h.Quantile(q)
		if !ok {
			return nil
		}
		v := math.Round(d.Seconds()*1000) / 1000
		return &v
	}
	s.MedianSeconds, s.P90Seconds = seconds(0.5), seconds(0.9)
	return s
}

// ProductReport is one product as GET /v1/analytics/products serves it.
type ProductReport struct {
	ProductID            string       `json:"productId"`
	Name                 string       `json:"name"`
	Added                int64        `json:"added"`
	AddedToCarts         int64        `json:"addedToCarts"`
	RemovedByCustomer    int64        `json:"removedByCustomer"`
	RemovedBySystem      int64        `json:"removedBySystem"`
	CheckedOut           int64        `json:"checkedOut"`
	AddedNeverCheckedOut int64        `json:"addedNeverCheckedOut"`
	QuantityRaised       int64        `json:"quantityRaised"`
	QuantityLowered      int64        `json:"quantityLowered"`
	DwellToCheckout      DwellSummary `json:"dwellToCheckout"`
	DwellToRemoval       DwellSummary `json:"dwellToRemoval"`
}

// Report is the product as the API serves it.
func (p ProductAnalytics) Report() ProductReport {
	return ProductReport{
		ProductID: p.ProductID, Name: p.Name, Added: p.Added, AddedToCarts: p.AddedToCarts,
		RemovedByCustomer: p.RemovedByCustomer, RemovedBySystem: p.RemovedBySystem, CheckedOut: p.CheckedOut,
		AddedNeverCheckedOut: p.AddedNeverCheckedOut(), QuantityRaised: p.QuantityRaised, QuantityLowered: p.QuantityLowered,
		DwellToCheckout: p.DwellToCheckout.Summary(), DwellToRemoval: p.DwellToRemoval.Summary(),
	}
}
