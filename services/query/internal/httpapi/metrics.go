package httpapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the query API's read-your-writes metrics.
type Metrics struct {
	// MinVersionWait is how long ?minVersion reads waited for the read
	// model (0 when it already had the version), whatever the outcome.
	MinVersionWait prometheus.Histogram
	// MinVersionGiveUps counts ?minVersion reads answered 503
	// read-model-behind (not those that found nothing to serve: 404).
	MinVersionGiveUps prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := newMetrics()
	for _, c := range []prometheus.Collector{m.MinVersionWait, m.MinVersionGiveUps} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("httpapi: register metrics: %w", err)
		}
	}
	return m, nil
}

func newMetrics() *Metrics {
	return &Metrics{
		MinVersionWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cart_query_min_version_wait_seconds",
			Help:    "Time a ?minVersion read waited for the read model to reach the version (0 when it had it).",
			Buckets: append([]float64{0}, prometheus.ExponentialBucketsRange(0.0005, 10, 16)...),
		}),
		MinVersionGiveUps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_query_min_version_give_ups_total",
			Help: "?minVersion reads answered 503 read-model-behind because the read model did not reach the version in time.",
		}),
	}
}
