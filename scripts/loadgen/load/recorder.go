package load

import (
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histograms hold microseconds from 1 µs to a minute with three significant
// digits: 0.1 % resolution at every scale, which is what tail latencies need.
const (
	histMin     = 1
	histMax     = int64(time.Minute / time.Microsecond)
	histSigFigs = 3
)

func newHistogram() *hdr.Histogram { return hdr.New(histMin, histMax, histSigFigs) }

// recordDuration adds d to h in microseconds, clamped to the histogram's
// range so that an extreme value is counted at the edge instead of lost.
func recordDuration(h *hdr.Histogram, d time.Duration) {
	us := max(d.Microseconds(), histMin)
	_ = h.RecordValue(min(us, histMax)) // cannot fail: the value is in range
}

// Recorder collects the outcome of every measured request: a latency
// histogram per op for the successes, a count per op and reason for the
// failures, and the histogram of the end-to-end visibility lag. It is safe
// for concurrent use; one lock is cheap next to an HTTP round trip.
type Recorder struct {
	mu       sync.Mutex
	ok       [numOps]*hdr.Histogram
	failures map[failure]int64
	lag      *hdr.Histogram
	lagFails map[string]int64
}

// failure is what went wrong with one op: an HTTP status and problem code,
// or a transport error class.
type failure struct {
	Op     Op
	Reason string
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	r := &Recorder{failures: map[failure]int64{}, lag: newHistogram(), lagFails: map[string]int64{}}
	for i := range r.ok {
		r.ok[i] = newHistogram()
	}
	return r
}

// OK records a successful op that took d.
func (r *Recorder) OK(op Op, d time.Duration) {
	r.mu.Lock()
	recordDuration(r.ok[op], d)
	r.mu.Unlock()
}

// Fail records a failed op.
func (r *Recorder) Fail(op Op, reason string) {
	r.mu.Lock()
	r.failures[failure{op, reason}]++
	r.mu.Unlock()
}

// Lag records the time from a command's 2xx to the query service serving
// its version.
func (r *Recorder) Lag(d time.Duration) {
	r.mu.Lock()
	recordDuration(r.lag, d)
	r.mu.Unlock()
}

// LagFail records a read-after-write that did not see its version.
func (r *Recorder) LagFail(reason string) {
	r.mu.Lock()
	r.lagFails[reason]++
	r.mu.Unlock()
}
