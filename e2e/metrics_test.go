package e2e_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestMetricsMoveUnderLoad: after a few commands every service's /metrics
// shows them — commands by outcome, group commits, the relay and the
// outbox, the projector's applied events, its lag and its consumer, the
// query's requests.
func TestMetricsMoveUnderLoad(t *testing.T) {
	s := mustStart(t, options{})
	tok := token(t, customer("metrics"), "")
	c := s.command(t, tok, "/v1/carts", nil)
	for range 9 {
		c = s.command(t, tok, "/v1/carts/"+c.CartID+"/add-item", item("123", 1))
	}
	s.awaitCart(t, tok, c.CartID, c.Version)

	eventually(t, 20*time.Second, "metrics show the 10 commands everywhere", func() error {
		for _, want := range []struct {
			url, sample string
			min, max    float64
		}{
			{s.commandMetrics, `cart_commands_total{command="add-item",outcome="ok"}`, 9, 9},
			{s.commandMetrics, `cart_commit_group_commands_sum{result="committed"}`, 10, 10},
			{s.commandMetrics, `cart_relay_leader`, 1, 1},
			{s.commandMetrics, `cart_relay_published_events_total`, 10, 10},
			{s.commandMetrics, `cart_outbox_backlog_events`, 0, 0},
			{s.projectorMetrics, `cart_projection_events_applied_total{projection="documents"}`, 10, 10},
			{s.projectorMetrics, `cart_projection_events_applied_total{projection="analytics"}`, 10, 10},
			{s.projectorMetrics, `cart_projection_lag_seconds_count{projection="documents"}`, 10, 10},
			{s.projectorMetrics, `cart_projector_consumer_pending_messages`, 0, 0},
			{s.projectorMetrics, `cart_projector_consumer_ack_pending_messages`, 0, 0},
			{s.queryMetrics, `http_requests_total{code="200",method="GET",route="/v1/carts/:cartId",service="query"}`, 1, 1e9},
		} {
			got, err := scrape(want.url, want.sample)
			if err != nil {
				return err
			}
			if got < want.min || got > want.max {
				return &metricError{want.url, want.sample, got}
			}
		}
		return nil
	})
}

type metricError struct {
	url, sample string
	got         float64
}

func (e *metricError) Error() string {
	return e.url + " " + e.sample + " = " + strconv.FormatFloat(e.got, 'g', -1, 64)
}

// scrape returns one sample's value from base's /metrics.
func scrape(base, sample string) (float64, error) {
	res, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0, &metricError{base, sample + " (absent)", 0}
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
