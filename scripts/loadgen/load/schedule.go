package load

import (
	"iter"
	"time"
)

// Schedule is an open loop's plan: request i is due at Start + i/Rate,
// whatever happened to the requests before it.
type Schedule struct {
	Start time.Time
	Rate  float64 // requests per second
}

// At is when request i is due.
func (s Schedule) At(i int64) time.Time {
	return s.Start.Add(time.Duration(float64(i) * float64(time.Second) / s.Rate))
}

// Count is how many requests are due before end.
func (s Schedule) Count(end time.Time) int64 {
	if !end.After(s.Start) {
		return 0
	}
	n := int64(end.Sub(s.Start).Seconds() * s.Rate)
	// Float rounding may put the boundary on either side: settle it with At.
	for n > 0 && !s.At(n-1).Before(end) {
		n--
	}
	for s.At(n).Before(end) {
		n++
	}
	return n
}

// Lane is the share of the requests before end that worker k of lanes
// sends: requests k, k+lanes, k+2·lanes, …, as their due times.
func (s Schedule) Lane(k, lanes int, end time.Time) iter.Seq[time.Time] {
	n := s.Count(end)
	return func(yield func(time.Time) bool) {
		for i := int64(k); i < n; i += int64(lanes) {
			if !yield(s.At(i)) {
				return
			}
		}
	}
}
