package load

import (
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("At", func(t *testing.T) {
		s := Schedule{Start: start, Rate: 1000}
		for i, want := range map[int64]time.Duration{0: 0, 1: time.Millisecond, 1500: 1500 * time.Millisecond} {
			if got := s.At(i).Sub(start); got != want {
				t.Errorf("At(%d) = start+%v, want start+%v", i, got, want)
			}
		}
	})
	t.Run("Count", func(t *testing.T) {
		for _, tc := range []struct {
			rate float64
			end  time.Duration
			want int64
		}{
			{1000, time.Second, 1000},                    // 0 … 999 ms; 1000 ms is the end, excluded
			{1000, time.Second + time.Microsecond, 1001}, // 1000 ms is due just before the end
			{3, time.Second, 3},                          // 0, 333.3, 666.7 ms
			{0.5, 10 * time.Second, 5},                   // one every 2 s
			{1000, 0, 0},
			{1000, -time.Second, 0},
			{333.3, 7 * time.Second, 2334}, // ceil(7 × 333.3)
		} {
			s := Schedule{Start: start, Rate: tc.rate}
			got := s.Count(start.Add(tc.end))
			if got != tc.want {
				t.Errorf("Count(rate %v, %v) = %d, want %d", tc.rate, tc.end, got, tc.want)
			}
			// Whatever the count, it is the number of due times before the end.
			if got > 0 && !s.At(got-1).Before(start.Add(tc.end)) || s.At(got).Before(start.Add(tc.end)) {
				t.Errorf("Count(rate %v, %v) = %d disagrees with At", tc.rate, tc.end, got)
			}
		}
	})
	t.Run("LanesShareTheScheduleExactly", func(t *testing.T) {
		s := Schedule{Start: start, Rate: 1000}
		end := start.Add(1234567 * time.Microsecond)
		n := s.Count(end)
		seen := map[time.Time]int{}
		for k := range 7 {
			var prev time.Time
			for at := range s.Lane(k, 7, end) {
				if !prev.IsZero() && !at.After(prev) {
					t.Fatalf("lane %d goes back in time: %v after %v", k, at, prev)
				}
				if !at.Before(end) {
					t.Fatalf("lane %d has %v, at or after the end", k, at)
				}
				prev = at
				seen[at]++
			}
		}
		if int64(len(seen)) != n {
			t.Fatalf("the lanes hold %d distinct due times, the schedule %d", len(seen), n)
		}
		for i := range n {
			if seen[s.At(i)] != 1 {
				t.Fatalf("request %d is in %d lanes, want exactly one", i, seen[s.At(i)])
			}
		}
	})
	t.Run("LaneStopsWhenTold", func(t *testing.T) {
		s := Schedule{Start: start, Rate: 10}
		got := 0
		for range s.Lane(0, 1, start.Add(time.Hour)) {
			if got++; got == 3 {
				break
			}
		}
		if got != 3 {
			t.Fatalf("took %d", got)
		}
	})
}
