package httpserver_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkEdgePOST is one small JSON command through the shared stack over
// a kept-alive connection: what the edge's checks (framing, methods, the
// buffered body) cost a command.
func BenchmarkEdgePOST(b *testing.B) {
	addr, _ := MustServeCommands(b)
	url := "http://" + addr + "/v1/carts/c1/add-item"
	client := &http.Client{}
	b.ReportAllocs()
	for b.Loop() {
		res, err := client.Post(url, "application/json", strings.NewReader(`{"productId":"123","quantity":1}`))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}
