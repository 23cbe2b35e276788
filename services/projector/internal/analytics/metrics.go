package analytics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Paths an event reaches the projection by, the label of the counters.
const (
	pathLive  = "live"
	pathBuild = "build"
)

// Metrics are the analytics projection's. Register them once per registry.
type Metrics struct {
	// Lag is how long after its occurrence an event was applied live to
	// the generation readers use.
	Lag prometheus.Histogram
	// Applied counts events applied, by path (live: to the generation
	// readers use, or the one being built when there is none yet; build:
	// read from the event log by a build).
	Applied *prometheus.CounterVec
	// Undecodable counts events that could not be decoded and were passed
	// over without counting, by path.
	Undecodable *prometheus.CounterVec
	// BuildEvents is how many events the running or last build has read;
	// BuildTotal how many the log held when it began.
	BuildEvents, BuildTotal prometheus.Gauge
	// BuildPhase is 1 for the phase the build is in, 0 for the others.
	BuildPhase *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cart_analytics_lag_seconds",
			Help:    "Analytics lag: from an event's time to its effect stored in the product analytics readers use.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		Applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_analytics_events_applied_total",
			Help: "Events folded into the product analytics, by path: live (the stream) or build (the event log).",
		}, []string{"path"}),
		Undecodable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_analytics_events_undecodable_total",
			Help: "Events the product analytics could not decode (an unknown schema version) and passed over without counting them, by path.",
		}, []string{"path"}),
		BuildEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cart_analytics_build_events_read",
			Help: "Events the running (or last) analytics build has read from the event log.",
		}),
		BuildTotal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cart_analytics_build_events",
			Help: "Events the running (or last) analytics build expects to read: the event log's size when it began.",
		}),
		BuildPhase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cart_analytics_build_phase",
			Help: "1 for the phase the analytics build is in (idle when none runs), 0 for the others.",
		}, []string{"phase"}),
	}
	for _, p := range []string{pathLive, pathBuild} {
		m.Applied.WithLabelValues(p)
		m.Undecodable.WithLabelValues(p)
	}
	for _, p := range phases {
		m.BuildPhase.WithLabelValues(string(p))
	}
	m.BuildPhase.WithLabelValues(string(PhaseIdle)).Set(1)
	for _, c := range []prometheus.Collector{m.Lag, m.Applied, m.Undecodable, m.BuildEvents, m.BuildTotal, m.BuildPhase} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("analytics: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) setPhase(p Phase) {
	for _, q := range phases {
		v := 0.0
		if q == p {
			v = 1
		}
		m.BuildPhase.WithLabelValues(string(q)).Set(v)
	}
}
