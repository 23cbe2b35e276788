package httpserver_test

import (
	"testing"

	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/httpserver"
)

func TestMetricsAddrFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name, api string
		env       map[string]string
		want      string
	}{
		{"Default", ":8080", nil, "127.0.0.1:9080"},
		{"FreeAPIPortFreeMetricsPort", "127.0.0.1:0", nil, "127.0.0.1:0"},
		{"Set", ":8080", map[string]string{"METRICS_ADDR": ":9100"}, ":9100"},
		{"SetWinsOverFreePort", ":0", map[string]string{"METRICS_ADDR": "10.0.0.1:9100"}, "10.0.0.1:9100"},
		{"EmptyIsDefault", ":8080", map[string]string{"METRICS_ADDR": ""}, "127.0.0.1:9080"},
		{"Off", ":8080", map[string]string{"METRICS_ADDR": "off"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := httpserver.MetricsAddrFromEnv(envconf.New(envconf.Map(tc.env)), tc.api, "127.0.0.1:9080"); got != tc.want {
				t.Errorf("= %q, want %q", got, tc.want)
			}
		})
	}
}

func TestListenMetricsOff(t *testing.T) {
	srv, err := httpserver.ListenMetrics("", nil, nil)
	if srv != nil || err != nil {
		t.Errorf("ListenMetrics(\"\") = %v, %v; want nothing", srv, err)
	}
}
