package httpserver_test

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/httpserver"
)

// TestTrickledBodyIsCutOff: a body sent a byte at a time is refused once
// the request's read timeout has passed, however steadily the bytes come,
// and never reaches the handler.
func TestTrickledBodyIsCutOff(t *testing.T) {
	const readTimeout = 700 * time.Millisecond
	addr, decided := MustServeCommands(t, httpserver.WithTimeouts(httpserver.Timeouts{Read: readTimeout}))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte(addItem + "Content-Length: 200\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	answered := make(chan *http.Response, 1)
	go func() { // owned by the test: it ends when conn is closed
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			close(answered)
			return
		}
		answered <- res
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case res, ok := <-answered:
			elapsed := time.Since(start)
			if ok {
				res.Body.Close()
				if res.StatusCode != http.StatusRequestTimeout {
					t.Errorf("status = %d, want 408", res.StatusCode)
				}
			}
			if elapsed < readTimeout || elapsed > readTimeout+5*time.Second {
				t.Errorf("cut off after %v, want about %v", elapsed, readTimeout)
			}
			if decided.Load() != 0 {
				t.Error("the handler decided on a partial body")
			}
			return
		case <-tick.C:
			if time.Since(start) > 10*time.Second {
				t.Fatal("the server still reads the trickle after 10s")
			}
			_, _ = conn.Write([]byte(" ")) // the server may have hung up already
		}
	}
}

func TestTimeoutsFromEnv(t *testing.T) {
	got := httpserver.TimeoutsFromEnv(envconf.New(envconf.Map(nil)))
	if got.Read != httpserver.DefaultTimeouts.Read {
		t.Errorf("default Read = %v, want %v", got.Read, httpserver.DefaultTimeouts.Read)
	}
	r := envconf.New(envconf.Map(map[string]string{"HTTP_READ_TIMEOUT": "3s"}))
	if got := httpserver.TimeoutsFromEnv(r); got.Read != 3*time.Second || r.Err() != nil {
		t.Errorf("HTTP_READ_TIMEOUT=3s: %+v, %v", got, r.Err())
	}
	if err := (httpserver.Timeouts{Read: -time.Second}).Validate(); err == nil {
		t.Error("a negative timeout validated")
	}
}
