package engine

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// consumerScrapeTimeout bounds the consumer info request a scrape makes.
const consumerScrapeTimeout = 2 * time.Second

var (
	consumerPendingDesc = prometheus.NewDesc("cart_projector_consumer_pending_messages",
		"Messages in the stream the durable consumer has not delivered yet (the projectors' backlog).", nil, nil)
	consumerAckPendingDesc = prometheus.NewDesc("cart_projector_consumer_ack_pending_messages",
		"Messages delivered to a projector and not acknowledged yet.", nil, nil)
	consumerRedeliveredDesc = prometheus.NewDesc("cart_projector_consumer_redelivered_messages",
		"Messages delivered more than once and not acknowledged yet.", nil, nil)
)

// consumerCollector reads the durable consumer's state from JetStream at
// scrape time. Every instance reports the same shared consumer;
// alert on max().
type consumerCollector struct{ e *Engine }

// ConsumerCollector is a Prometheus collector of the shared durable
// consumer's pending, ack-pending and redelivered messages.
func (e *Engine) ConsumerCollector() prometheus.Collector { return consumerCollector{e} }

func (c consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- consumerPendingDesc
	ch <- consumerAckPendingDesc
	ch <- consumerRedeliveredDesc
}

func (c consumerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), consumerScrapeTimeout)
	defer cancel()
	cons, err := c.e.loop.js.Consumer(ctx, c.e.cfg.Stream, c.e.cfg.Durable)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(consumerPendingDesc, err)
		return
	}
	info := cons.CachedInfo()
	ch <- prometheus.MustNewConstMetric(consumerPendingDesc, prometheus.GaugeValue, float64(info.NumPending))
	ch <- prometheus.MustNewConstMetric(consumerAckPendingDesc, prometheus.GaugeValue, float64(info.NumAckPending))
	ch <- prometheus.MustNewConstMetric(consumerRedeliveredDesc, prometheus.GaugeValue, float64(info.NumRedelivered))
}
