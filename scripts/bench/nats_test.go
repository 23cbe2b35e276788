package main

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestLocalListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		name, url string
		found     bool
		why       string
	}{
		{"OKThisProcess", "nats://127.0.0.1:" + port, true, ""},
		{"OKLocalhost", "nats://localhost:" + port, true, ""},
		{"ErrAnotherHost", "nats://nats.example:4222", false, "is not on this machine"},
		{"ErrNobodyListens", "nats://127.0.0.1:1", false, "no process of this machine found listening on port 1"},
		{"ErrNotAURL", "nats://[::1", false, "is not a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid, why := localListener(tc.url, "4222")
			if (pid != 0) != tc.found || !strings.Contains(why, tc.why) {
				t.Fatalf("localListener(%q) = %d, %q", tc.url, pid, why)
			}
		})
	}
}
