package engine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's: the consumer's, and every projection's, by the
// projection label. Register them once per registry.
type Metrics struct {
	BatchDuration prometheus.Histogram
	Terminated    prometheus.Counter
	// Applied counts the events each projection applied; Lag is how long
	// after its occurrence an event reached a projection's store.
	Applied *prometheus.CounterVec
	Lag     *prometheus.HistogramVec
	// Undecodable counts the events a counting projection passed over, by
	// path: live (the stream) or build (the event log).
	Undecodable *prometheus.CounterVec
	// The running or last build of each projection's generation: events
	// read, events expected (the log's size when it began), and 1 for its
	// phase.
	BuildRead, BuildTotal *prometheus.GaugeVec
	BuildPhase            *prometheus.GaugeVec
	// BuildApplied counts the events builds read from the event log.
	BuildApplied *prometheus.CounterVec
}

// Paths of the Undecodable counter.
const (
	PathLive  = "live"
	PathBuild = "build"
)

// NewMetrics creates the engine's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	byProjection := []string{"projection"}
	m := &Metrics{
		BatchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cart_projector_batch_duration_seconds",
			Help:    "Time to project one fetched batch into every projection but the trailing ones (applied to held batches later), from decoding to the last ack.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		Terminated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_projector_messages_terminated_total",
			Help: "Messages that are not cart events and were terminated.",
		}),
		Applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_projection_events_applied_total",
			Help: "Events a projection applied from the stream and stored.",
		}, byProjection),
		Lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cart_projection_lag_seconds",
			Help:    "Projection lag: from an event's time (its command's commit) to its effect stored by the projection.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to 33 s
		}, byProjection),
		Undecodable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_projection_events_undecodable_total",
			Help: "Events a counting projection could not decode (an unknown schema version) and passed over, by path.",
		}, []string{"projection", "path"}),
		BuildRead: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cart_projection_build_events_read",
			Help: "Events the running (or last) build of a projection's generation has read from the event log.",
		}, byProjection),
		BuildTotal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cart_projection_build_events",
			Help: "Events the running (or last) build of a projection expects to read: the event log's size when it began.",
		}, byProjection),
		BuildPhase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cart_projection_build_phase",
			Help: "1 for the phase a projection's build is in (idle when none ran), 0 for the others.",
		}, []string{"projection", "phase"}),
		BuildApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_projection_build_events_applied_total",
			Help: "Events builds of a projection read from the event log and folded.",
		}, byProjection),
	}
	for _, c := range []prometheus.Collector{m.BatchDuration, m.Terminated, m.Applied, m.Lag, m.Undecodable,
		m.BuildRead, m.BuildTotal, m.BuildPhase, m.BuildApplied} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) setPhase(projection string, p Phase) {
	for _, ph := range phases {
		v := 0.0
		if ph == p {
			v = 1
		}
		m.BuildPhase.WithLabelValues(projection, string(ph)).Set(v)
	}
}
