package main

import (
	"testing"
	"time"
)

func TestPublishStats(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// 100 publishes: 98 of 1 ms, then 5 ms and 20 ms, over 2 s.
		took := make([]time.Duration, 0, 100)
		took = append(took, 20*time.Millisecond, 5*time.Millisecond)
		for range 98 {
			took = append(took, time.Millisecond)
		}
		p := publishStats(took, 2*time.Second, 512)
		if p.Messages != 100 || p.Bytes != 512 || p.Seconds != 2 || p.PerSec != 50 {
			t.Fatalf("stats %+v", p)
		}
		if p.P50Ms != 1 || p.P99Ms != 5 || p.MaxMs != 20 {
			t.Fatalf("p50 %v, p99 %v, max %v ms; want 1, 5, 20", p.P50Ms, p.P99Ms, p.MaxMs)
		}
	})
	t.Run("OKNone", func(t *testing.T) {
		if p := publishStats(nil, 0, 512); p.PerSec != 0 || p.Messages != 0 {
			t.Fatalf("stats of nothing %+v", p)
		}
	})
}
