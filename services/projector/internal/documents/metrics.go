package documents

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the cart documents' own counters (the engine counts what
// every projection has: events applied, lag, builds). Register them once
// per registry.
type Metrics struct {
	Duplicates   prometheus.Counter
	GapsRepaired prometheus.Counter
	// HistoryRepaired counts history lists rebuilt from the event log.
	HistoryRepaired prometheus.Counter
	// Parked counts events this instance parked; ParkedEvents is how many
	// are parked now, over all instances.
	Parked       prometheus.Counter
	ParkedEvents prometheus.Gauge
	// Remembered counts the carts a batch folded from the documents this
	// instance stored last (hit) or read from the store (miss), and the
	// hits the store then refused as stale (stale).
	Remembered *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
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
		Parked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_projector_events_parked_total",
			Help: "Events parked because they could not be applied (and the same carts' later events behind them).",
		}),
		ParkedEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cart_projector_parked_events",
			Help: "Events parked now, over every projector instance: see GET /admin/parked.",
		}),
		Remembered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_projector_cart_cache_total",
			Help: "Carts folded from the documents this instance stored last (hit) or read from Redis (miss); stale: hits Redis refused, read again.",
		}, []string{"result"}),
	}
	for _, r := range []string{"hit", "miss", "stale"} {
		m.Remembered.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.Duplicates, m.GapsRepaired, m.HistoryRepaired, m.Parked, m.ParkedEvents, m.Remembered} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}
