package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/services/command/internal/httpapi"
)

// TestCommandMetrics: every command is counted once, by the outcome its
// client saw.
func TestCommandMetrics(t *testing.T) {
	t.Parallel()
	a := mustAPI(t)
	id := a.mustCart(t, "alice") // open: ok
	path := "/v1/carts/" + id + "/add-item"
	body := `{"productId": "123", "quantity": 1}`
	key := map[string]string{"Idempotency-Key": "k-1"}

	mustOK(t, a.post(t, req{path: path, as: "alice", body: body, header: key}), http.StatusOK)
	mustOK(t, a.post(t, req{path: path, as: "alice", body: body, header: key}), http.StatusOK)
	mustProblem(t, a.post(t, req{path: path, as: "alice", body: body, header: map[string]string{"If-Match": `"1"`}}),
		http.StatusPreconditionFailed, "version-mismatch")
	mustProblem(t, a.post(t, req{path: path, as: "alice", body: `{"productId": "999", "quantity": 1}`}),
		http.StatusConflict, "product-unavailable")
	mustProblem(t, a.post(t, req{path: path, as: "bob", body: body}), http.StatusNotFound, "cart-not-found")
	mustProblem(t, a.post(t, req{path: path, as: "alice", body: `{`}), http.StatusBadRequest, "malformed-body")
	mustProblem(t, a.post(t, req{path: "/v1/carts/" + id + "/checkout", body: `{}`}), http.StatusUnauthorized, "unauthorized")

	for _, tc := range []struct {
		command, outcome string
		want             float64
	}{
		{"open", httpapi.OutcomeOK, 1},
		{"add-item", httpapi.OutcomeOK, 1},
		{"add-item", httpapi.OutcomeReplayed, 1},
		{"add-item", httpapi.OutcomePrecondFail, 1},
		{"add-item", httpapi.OutcomeRejected, 2},
		{"add-item", httpapi.OutcomeInvalid, 1},
		{"add-item", httpapi.OutcomeConflict, 0},
		{"add-item", httpapi.OutcomeError, 0},
	} {
		got := counterValue(t, a.reg, "cart_commands_total", map[string]string{"command": tc.command, "outcome": tc.outcome})
		if got != tc.want {
			t.Errorf("cart_commands_total{command=%q,outcome=%q} = %v, want %v", tc.command, tc.outcome, got, tc.want)
		}
	}
}

// counterValue is the value of the counter name with exactly labels in reg,
// 0 when it was never incremented.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
