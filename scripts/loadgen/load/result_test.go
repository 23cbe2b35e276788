package load

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 0.001*math.Max(math.Abs(a), math.Abs(b)) }

func TestRecorderResult(t *testing.T) {
	r := NewRecorder()
	// add-item: 1 … 100 ms; read: 100 × 0.5 ms; checkout: only failures.
	for i := 1; i <= 100; i++ {
		r.OK(OpAdd, time.Duration(i)*time.Millisecond)
		r.OK(OpRead, 500*time.Microsecond)
	}
	r.Fail(OpAdd, "409 cart-checked-out")
	r.Fail(OpAdd, "409 cart-checked-out")
	r.Fail(OpCheckout, "timeout")
	r.Lag(2 * time.Millisecond)
	r.Lag(4 * time.Millisecond)
	r.LagFail("503 read-model-behind")
	// Out of range values are counted at the edges, not lost.
	r.OK(OpOpen, 0)
	r.OK(OpOpen, 2*time.Hour)

	res, err := r.Result(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	add := res.Ops["add-item"]
	if add.OK != 100 || add.Failed != 2 || add.Throughput != 10 {
		t.Errorf("add-item: ok %d failed %d throughput %v, want 100, 2, 10/s", add.OK, add.Failed, add.Throughput)
	}
	if !near(add.Latency.P50, 50) || !near(add.Latency.P99, 99) || !near(add.Latency.Max, 100) || !near(add.Latency.Mean, 50.5) {
		t.Errorf("add-item latency = %+v, want p50 50, p99 99, max 100, mean 50.5 ms", add.Latency)
	}
	if co := res.Ops["checkout"]; co.OK != 0 || co.Failed != 1 {
		t.Errorf("checkout = %+v, want only its failure", co)
	}
	if open := res.Ops["open"]; open.OK != 2 || open.Latency.Max < 59_000 {
		t.Errorf("open = %+v, want both values, the second at the minute limit", open)
	}
	cmds, reads := res.Commands(), res.Reads()
	if cmds.OK != 102 || cmds.Failed != 3 || reads.OK != 100 || reads.Failed != 0 {
		t.Errorf("aggregates: commands %d/%d, reads %d/%d; want 102/3 and 100/0", cmds.OK, cmds.Failed, reads.OK, reads.Failed)
	}
	if !near(reads.Latency.P999, 0.5) {
		t.Errorf("reads p99.9 = %v, want 0.5 ms", reads.Latency.P999)
	}
	if res.Lag == nil || res.Lag.OK != 2 || res.Lag.Failed != 1 || !near(res.Lag.Latency.P50, 2) || !near(res.Lag.Latency.Max, 4) {
		t.Errorf("lag = %+v", res.Lag)
	}
	want := map[string]int64{"add-item: 409 cart-checked-out": 2, "checkout: timeout": 1, "lag: 503 read-model-behind": 1}
	for k, v := range want {
		if res.Failures[k] != v {
			t.Errorf("failures[%q] = %d, want %d (all: %v)", k, res.Failures[k], v, res.Failures)
		}
	}
	if _, ok := res.Ops["remove-item"]; ok {
		t.Error("an op never sent has stats")
	}

	t.Run("HistogramRoundTripsThroughJSON", func(t *testing.T) {
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		var back Result
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		h, err := back.Ops["add-item"].DecodeHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h.TotalCount() != 100 || LatencyOf(h) != add.Latency {
			t.Fatalf("decoded histogram: %d values, %+v; want 100, %+v", h.TotalCount(), LatencyOf(h), add.Latency)
		}
	})
}

func TestSummary(t *testing.T) {
	r := NewRecorder()
	r.OK(OpAdd, 3*time.Millisecond)
	r.OK(OpRead, time.Millisecond)
	r.Fail(OpRead, "404 cart-not-found")
	r.Lag(2 * time.Millisecond)
	res, err := r.Result(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res.Scenario, res.Mode, res.Clients, res.Rate, res.Customers = "mix", Open, 4, 100, 32
	got := res.Summary()
	for _, want := range []string{
		"mix, open loop, 4 clients, 100 ops/s scheduled, 32 customers, 1.0s measured",
		"\ncommands ", "\nreads ", "\n  add-item ", "\n  read ", "\nvisibility lag ",
		"failed read: 404 cart-not-found × 1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "commands") > strings.Index(got, "  add-item") {
		t.Errorf("the aggregates come before the ops:\n%s", got)
	}
}
