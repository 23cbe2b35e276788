package app_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestMetrics: the write side's metrics are served on the management
// address, not the API's port, and move: commands by
// outcome, group transactions, the outbox backlog while no relay runs, and
// the relay's leadership and published count once one does.
func TestMetrics(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.RelayEnabled = false
	a := mustRun(t, cfg)
	base := "http://" + a.Addr()
	for _, customer := range []string{"ann", "ben", "cat"} {
		mustOpenCart(t, cfg, base, customer)
	}
	if res, err := http.Get(base + "/metrics"); err != nil || res.Body.Close() != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("the API's port serves /metrics: %v %v", res, err)
	}
	m := scrape(t, "http://"+a.MetricsAddr())
	for name, want := range map[string]float64{
		`cart_commands_total{command="open",outcome="ok"}`:             3,
		`cart_commit_group_commands_count{result="committed"}`:         3, // one at a time here
		`cart_outbox_backlog_events`:                                   3,
		`cart_commit_group_duration_seconds_count{result="committed"}`: 3,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if age := m["cart_outbox_oldest_age_seconds"]; age <= 0 {
		t.Errorf("cart_outbox_oldest_age_seconds = %v with three events waiting", age)
	}
	if _, ok := m["cart_relay_leader"]; ok {
		t.Error("cart_relay_leader served by an instance without a relay")
	}

	t.Run("WithRelay", func(t *testing.T) {
		cfg.RelayEnabled, cfg.HTTPAddr, cfg.DebugAddr, cfg.Migrate = true, "127.0.0.1:0", "", false
		cfg.Relay.VerifyInterval = 50 * time.Millisecond
		b := mustRun(t, cfg)
		poll(t, "the relay drains the outbox, keeps what it published, and says so", func() bool {
			m := scrape(t, "http://"+b.MetricsAddr())
			return m["cart_relay_leader"] == 1 && m["cart_relay_published_events_total"] == 3 &&
				m["cart_outbox_backlog_events"] == 0 && m["cart_outbox_oldest_age_seconds"] == 0 &&
				m["cart_relay_retained_events"] == 3
		})
		m := scrape(t, "http://"+b.MetricsAddr())
		for _, name := range []string{`cart_stream_loss_detected_total{reason="went_back"}`, `cart_stream_loss_detected_total{reason="missing"}`,
			`cart_stream_loss_detected_total{reason="recreated"}`, `cart_relay_republished_events_total`} {
			if got, ok := m[name]; !ok || got != 0 {
				t.Errorf("%s = %v (present %v), want 0", name, got, ok)
			}
		}
	})
}

var sample = regexp.MustCompile(`(?m)^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$`)

// scrape returns /metrics as sample → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d (%v)", res.StatusCode, err)
	}
	m := map[string]float64{}
	for _, s := range sample.FindAllStringSubmatch(string(body), -1) {
		v, err := strconv.ParseFloat(s[2], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", s[0], err)
		}
		m[s[1]] = v
	}
	return m
}
