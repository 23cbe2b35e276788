package load

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Aggregates next to the per-op stats of a Result.
const (
	AllCommands = "commands" // every op sent to the command service
	AllReads    = "reads"    // every read of the query service
)

// Result is the machine-readable outcome of one run.
type Result struct {
	Scenario  string    `json:"scenario"`
	Mode      Mode      `json:"mode"`
	Clients   int       `json:"clients"`
	Rate      float64   `json:"rate,omitempty"` // open loop: ops scheduled per second
	Customers int       `json:"customers"`
	Started   time.Time `json:"started"`
	// Seconds is the measured window (the warm-up excluded).
	Seconds float64 `json:"seconds"`
	// Ops holds the stats of each op that was sent, by name, and of the
	// AllCommands and AllReads aggregates.
	Ops map[string]Stats `json:"ops"`
	// Lag is the end-to-end visibility lag: from a command's 2xx to the
	// query service serving that version. Nil without read-after-write.
	Lag *Stats `json:"lag,omitempty"`
	// Failures counts failed requests by "op: reason".
	Failures map[string]int64 `json:"failures,omitempty"`
	// NotSent counts open-loop requests still unsent when the run's drain
	// deadline passed: the system fell that far behind the schedule.
	NotSent int64 `json:"notSent,omitempty"`
}

// Stats summarises the successful requests of one op (or the lag).
type Stats struct {
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
	// Throughput is successes per second of the measured window.
	Throughput float64 `json:"throughput"`
	Latency    Latency `json:"latencyMs"`
	// Histogram is the HDR histogram of the latencies in microseconds,
	// compressed and base64-encoded (hdrhistogram-go Encode), for plots and
	// for merging runs.
	Histogram string `json:"hdr"`
}

// Latency is a histogram's percentiles in milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Commands is the stats of every command together.
func (r Result) Commands() Stats { return r.Ops[AllCommands] }

// Reads is the stats of every read together.
func (r Result) Reads() Stats { return r.Ops[AllReads] }

// DecodeHistogram returns the histogram of s (microseconds).
func (s Stats) DecodeHistogram() (*hdr.Histogram, error) {
	if s.Histogram == "" {
		return newHistogram(), nil
	}
	h, err := hdr.Decode([]byte(s.Histogram))
	if err != nil {
		return nil, fmt.Errorf("load: decode histogram: %w", err)
	}
	return h, nil
}

// LatencyOf returns h's percentiles in milliseconds.
func LatencyOf(h *hdr.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Mean: h.Mean() / 1000,
		P50:  ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)),
		Max: ms(h.Max()),
	}
}

func statsOf(h *hdr.Histogram, failed int64, window time.Duration) (Stats, error) {
	enc, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return Stats{}, fmt.Errorf("load: encode histogram: %w", err)
	}
	s := Stats{OK: h.TotalCount(), Failed: failed, Latency: LatencyOf(h), Histogram: string(enc)}
	if window > 0 {
		s.Throughput = float64(s.OK) / window.Seconds()
	}
	return s, nil
}

// Result summarises what r recorded over a measured window.
func (r *Recorder) Result(window time.Duration) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := Result{Seconds: window.Seconds(), Ops: map[string]Stats{}, Failures: map[string]int64{}}
	var failed [numOps]int64
	for f, n := range r.failures {
		failed[f.Op] += n
		res.Failures[f.Op.String()+": "+f.Reason] += n
	}
	commands, reads := newHistogram(), newHistogram()
	var commandsFailed, readsFailed int64
	for op := range numOps {
		h := r.ok[op]
		if h.TotalCount() == 0 && failed[op] == 0 {
			continue
		}
		s, err := statsOf(h, failed[op], window)
		if err != nil {
			return Result{}, err
		}
		res.Ops[op.String()] = s
		if op.IsCommand() {
			commands.Merge(h)
			commandsFailed += failed[op]
		} else {
			reads.Merge(h)
			readsFailed += failed[op]
		}
	}
	for name, agg := range map[string]struct {
		h      *hdr.Histogram
		failed int64
	}{AllCommands: {commands, commandsFailed}, AllReads: {reads, readsFailed}} {
		if agg.h.TotalCount() == 0 && agg.failed == 0 {
			continue
		}
		s, err := statsOf(agg.h, agg.failed, window)
		if err != nil {
			return Result{}, err
		}
		res.Ops[name] = s
	}
	var lagFailed int64
	for reason, n := range r.lagFails {
		lagFailed += n
		res.Failures["lag: "+reason] += n
	}
	if r.lag.TotalCount() > 0 || lagFailed > 0 {
		s, err := statsOf(r.lag, lagFailed, window)
		if err != nil {
			return Result{}, err
		}
		res.Lag = &s
	}
	return res, nil
}

// Summary renders the result for a person: one line per op with its
// throughput and latency percentiles, then the lag and the failures.
func (r Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s loop, %d clients", r.Scenario, r.Mode, r.Clients)
	if r.Mode == Open {
		fmt.Fprintf(&b, ", %.0f ops/s scheduled", r.Rate)
	}
	fmt.Fprintf(&b, ", %d customers, %.1fs measured\n", r.Customers, r.Seconds)
	fmt.Fprintf(&b, "%-17s %9s %7s %9s %8s %8s %8s %8s %8s\n", "op", "ok", "failed", "ok/s", "p50 ms", "p90", "p99", "p99.9", "max")
	line := func(name string, s Stats) {
		l := s.Latency
		fmt.Fprintf(&b, "%-17s %9d %7d %9.1f %8.2f %8.2f %8.2f %8.2f %8.2f\n",
			name, s.OK, s.Failed, s.Throughput, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	for _, name := range orderedOps(r.Ops) {
		label := name
		if name != AllCommands && name != AllReads {
			label = "  " + name
		}
		line(label, r.Ops[name])
	}
	if r.Lag != nil {
		line("visibility lag", *r.Lag)
	}
	if r.NotSent > 0 {
		fmt.Fprintf(&b, "not sent by the drain deadline: %d\n", r.NotSent)
	}
	for _, f := range slices.Sorted(maps.Keys(r.Failures)) {
		fmt.Fprintf(&b, "failed %s × %d\n", f, r.Failures[f])
	}
	return b.String()
}

// orderedOps lists the aggregates first, then the ops in their natural order.
func orderedOps(ops map[string]Stats) []string {
	var out []string
	for _, name := range []string{AllCommands, AllReads} {
		if _, ok := ops[name]; ok {
			out = append(out, name)
		}
	}
	for op := range numOps {
		if _, ok := ops[op.String()]; ok {
			out = append(out, op.String())
		}
	}
	return out
}
