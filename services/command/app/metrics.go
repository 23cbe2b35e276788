package app

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/services/command/internal/relay"
)

// scrapeTimeout bounds the outbox query a scrape runs.
const scrapeTimeout = 2 * time.Second

// registerMetrics adds the write side's own metrics to reg: the group
// commit's, the relay's, and the outbox backlog.
func (a *App) registerMetrics(reg prometheus.Registerer) error {
	errs := []error{a.repo.Register(reg), reg.Register(&outboxCollector{pool: a.pool})}
	if a.relay != nil {
		errs = append(errs, registerRelay(reg, a.relay))
	}
	return errors.Join(errs...)
}

func registerRelay(reg prometheus.Registerer, r *relay.Relay) error {
	return errors.Join(
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cart_relay_leader",
			Help: "1 while this instance's outbox relay holds the lock and publishes, 0 while it stands by.",
		}, func() float64 {
			if r.IsLeader() {
				return 1
			}
			return 0
		})),
		reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cart_relay_published_events_total",
			Help: "Events this instance's relay published to JetStream (PubAck received) and removed from the outbox.",
		}, func() float64 { return float64(r.Published()) })),
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cart_relay_floor_position",
			Help: "Event position at or below which the leading relay knows every outbox row published; its rounds read from there. 0 on a standby.",
		}, func() float64 { return float64(r.Floor()) })),
		reg.Register(&lossCollector{r: r}),
		reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cart_relay_republished_events_total",
			Help: "Events this instance's relay published again after it found the stream had lost them.",
		}, func() float64 { return float64(r.Republished()) })),
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cart_relay_retained_events",
			Help: "Published events the outbox keeps for the retention window (RELAY_RETENTION), to publish them again should the stream lose them; counted by the leader at each check of the stream, 0 on a standby.",
		}, func() float64 { return float64(r.Retained()) })),
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cart_relay_last_round_seconds",
			Help: "Duration of the relay's last round: read a batch, publish it, remove it.",
		}, func() float64 { return r.LastRoundDuration().Seconds() })),
	)
}

// lossCollector reports the losses of acknowledged messages the relay
// detected, by reason.
type lossCollector struct{ r *relay.Relay }

var lossDesc = prometheus.NewDesc("cart_stream_loss_detected_total",
	"Times this instance's relay found that the stream had lost messages it acknowledged: went_back (its last sequence is below what was acknowledged), recreated (deleted and created again), missing (gone).",
	[]string{"reason"}, nil)

func (c *lossCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lossDesc }

func (c *lossCollector) Collect(ch chan<- prometheus.Metric) {
	for reason, n := range c.r.LossesDetected() {
		ch <- prometheus.MustNewConstMetric(lossDesc, prometheus.CounterValue, float64(n), reason)
	}
}

// outboxCollector reads the outbox backlog at scrape time: how many events
// wait to be published and how long the oldest has waited. Every instance
// reports the same numbers; alert on max().
type outboxCollector struct {
	pool *pgxpool.Pool
}

var (
	outboxBacklogDesc = prometheus.NewDesc("cart_outbox_backlog_events",
		"Events committed but not yet published (rows in the outbox).", nil, nil)
	outboxOldestDesc = prometheus.NewDesc("cart_outbox_oldest_age_seconds",
		"Age of the oldest unpublished event; 0 when the outbox is empty.", nil, nil)
)

func (o *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxBacklogDesc
	ch <- outboxOldestDesc
}

func (o *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	var (
		n   int64
		age float64
	)
	err := o.pool.QueryRow(ctx,
		`SELECT count(*), COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(enqueued_at)), 0)::float8 FROM outbox`,
	).Scan(&n, &age)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxBacklogDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxBacklogDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(outboxOldestDesc, prometheus.GaugeValue, age)
}
