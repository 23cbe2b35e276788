package postgres

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// commitMetrics describe the group commit: how many commands a transaction
// holds and how long it takes, by how it ended.
type commitMetrics struct {
	groupSize *prometheus.HistogramVec
	duration  *prometheus.HistogramVec
}

func newCommitMetrics() *commitMetrics {
	return &commitMetrics{
		groupSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cart_commit_group_commands",
			Help:    "Commands per group transaction, by result: committed, or retried without the commands that failed.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cart_commit_group_duration_seconds",
			Help:    "Time of one group transaction, from BEGIN to COMMIT or rollback, by result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
		}, []string{"result"}),
	}
}

func (m *commitMetrics) observe(commands int, committed bool, elapsed time.Duration) {
	result := "committed"
	if !committed {
		result = "retried"
	}
	m.groupSize.WithLabelValues(result).Observe(float64(commands))
	m.duration.WithLabelValues(result).Observe(elapsed.Seconds())
}

// Register adds the repository's metrics to reg.
func (r *Repository) Register(reg prometheus.Registerer) error {
	return errors.Join(reg.Register(r.commitMetrics.groupSize), reg.Register(r.commitMetrics.duration))
}
