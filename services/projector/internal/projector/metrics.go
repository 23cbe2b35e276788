package projector

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the projector's counters. Register them once per registry and
// share them between projectors of one process.
type Metrics struct {
	Applied      prometheus.Counter
	Duplicates   prometheus.Counter
	GapsRepaired prometheus.Counter
	// HistoryRepaired counts history lists rebuilt from the event log.
	HistoryRepaired prometheus.Counter
	Terminated      prometheus.Counter
	BatchDuration   prometheus.Histogram
	// Lag is how long after its occurrence an event reached Redis.
	Lag prometheus.Histogram
	// Parked counts events this instance parked; ParkedEvents is how many
	// are parked now, over all instances.
	Parked       prometheus.Counter
	ParkedEvents prometheus.Gauge
	// RebuildApplied counts the events a rebuild folded; RebuildTotal is
	// how many the running rebuild expects (the log's size when it began).
	RebuildApplied prometheus.Counter
	RebuildTotal   prometheus.Gauge
}

// NewMetrics creates the projector's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cart_projector_lag_seconds",
			Help:    "Projection lag: from an event's time (its command's commit) to its cart document's write in Redis.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to 33 s
		}),
		Applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_projector_events_applied_total",
			Help: "Events folded into a cart document and stored.",
		}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_projector_events_duplicate_total",
			Help: "Events acknowledged without change because the document already had them.",
		}),
		GapsRepaired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_projector_gaps_repaired_total",
			Help: "Version gaps filled from the event log in PostgreSQL.",
		}),
		HistoryRepaired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_projector_history_repaired_total",
			Help: "Cart history lists rebuilt from the event log because they were out of step with the document.",
		}),
		Terminated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_projector_messages_terminated_total",
			Help: "Messages that are not cart events and were terminated.",
		}),
		BatchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cart_projector_batch_duration_seconds",
			Help:    "Time to project one fetched batch, from decoding to the last ack.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		Parked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_projector_events_parked_total",
			Help: "Events parked because they could not be applied (and the same carts' later events behind them).",
		}),
		ParkedEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cart_projector_parked_events",
			Help: "Events parked now, over every projector instance: see GET /admin/parked.",
		}),
		RebuildApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_projector_rebuild_events_applied_total",
			Help: "Events folded from the event log by read-model rebuilds.",
		}),
		RebuildTotal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cart_projector_rebuild_events",
			Help: "Events the running read-model rebuild expects to fold (the event log's size when it began); 0 when none runs.",
		}),
	}
	for _, c := range []prometheus.Collector{m.Applied, m.Duplicates, m.GapsRepaired, m.HistoryRepaired, m.Terminated, m.BatchDuration, m.Lag,
		m.Parked, m.ParkedEvents, m.RebuildApplied, m.RebuildTotal} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("projector: register metrics: %w", err)
		}
	}
	return m, nil
}
