package main

import (
	"strings"
	"testing"
)

func TestParseRebuilt(t *testing.T) {
	rb, err := parseRebuilt("documents: rebuilt 150000 events of 15000 carts in 1.234s (121555.9 events/s) into generation 2")
	if err != nil {
		t.Fatal(err)
	}
	if !rb.Available || rb.Events != 150000 || rb.Carts != 15000 || rb.Seconds != 1.234 || rb.EventsPerSec != 121555.9 {
		t.Fatalf("parseRebuilt = %+v", rb)
	}
	for name, line := range map[string]string{
		"ErrProgressLine": "rebuilding: 40000/150000 events",
		"ErrDuration":     "documents: rebuilt 1 events of 1 carts in soon (1 events/s) into generation 2",
		"ErrEmpty":        "",
	} {
		t.Run(name, func(t *testing.T) {
			if rb, err := parseRebuilt(line); err == nil {
				t.Fatalf("parseRebuilt(%q) = %+v, want an error", line, rb)
			}
		})
	}
	if got := lastLine("progress 10%\nprogress 100%\nrebuilt … \n\n"); !strings.HasPrefix(got, "rebuilt") {
		t.Errorf("lastLine = %q", got)
	}
}
