package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Toxi is toxiproxy running in the test process: one TCP proxy per
// dependency, on which toxics slow, stall and break the connections.
type Toxi struct {
	server  *toxiproxy.ApiServer
	proxies map[string]*toxiproxy.Proxy
}

// StartToxi starts a proxy on a free loopback port for each named upstream
// (host:port); they stop when the test ends.
func StartToxi(tb testing.TB, upstreams map[string]string) *Toxi {
	tb.Helper()
	t := &Toxi{
		server:  toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		proxies: map[string]*toxiproxy.Proxy{},
	}
	for name, upstream := range upstreams {
		p := toxiproxy.NewProxy(t.server, name, "127.0.0.1:0", upstream)
		if err := p.Start(); err != nil {
			tb.Fatalf("chaos: toxiproxy %s: %v", name, err)
		}
		tb.Cleanup(p.Stop)
		t.proxies[name] = p
	}
	return t
}

// Addr is the address clients of the named upstream connect to.
func (t *Toxi) Addr(name string) string { return t.proxies[name].Listen }

// Toxic is one toxic as toxiproxy's API describes it: type latency,
// timeout, reset_peer, slow_close, bandwidth, …; stream upstream or
// downstream; toxicity the share of connections it applies to.
type Toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// Add adds a toxic to the named proxy.
func (t *Toxi) Add(proxy string, toxic Toxic) error {
	b, err := json.Marshal(toxic)
	if err != nil {
		return fmt.Errorf("chaos: toxic %s: %w", toxic.Name, err)
	}
	if _, err := t.proxies[proxy].Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("chaos: add toxic %s to %s: %w", toxic.Name, proxy, err)
	}
	return nil
}

// Reset removes every toxic from every proxy.
func (t *Toxi) Reset() {
	for _, p := range t.proxies {
		p.Toxics.ResetToxics(context.Background())
	}
}
