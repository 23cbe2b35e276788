package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

// Command outcomes, the values of cart_commands_total's outcome label.
const (
	OutcomeOK          = "ok"                  // the command ran (or was a no-op)
	OutcomeReplayed    = "replayed"            // answered from its Idempotency-Key
	OutcomeConflict    = "conflict"            // lost every retry to concurrent writers (409)
	OutcomePrecondFail = "precondition-failed" // If-Match did not match (412)
	OutcomeRejected    = "rejected"            // refused by a rule of the cart (403, 404, 409, 422)
	OutcomeInvalid     = "invalid"             // a malformed or unauthenticated request (other 4xx)
	OutcomeError       = "error"               // our failure or a dependency's (5xx), or the client left
)

// commandMetrics counts commands by route and outcome.
type commandMetrics struct {
	commands *prometheus.CounterVec
}

func newCommandMetrics(reg prometheus.Registerer) (*commandMetrics, error) {
	m := &commandMetrics{commands: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cart_commands_total",
		Help: "Cart commands by command and outcome: ok, replayed, conflict, precondition-failed, rejected, invalid, error.",
	}, []string{"command", "outcome"})}
	if reg == nil {
		return m, nil
	}
	return m, reg.Register(m.commands)
}

// count wraps the handler of command so that each request is counted once,
// by the outcome its client sees.
func (m *commandMetrics) count(command string, h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := h(c)
		m.commands.WithLabelValues(command, outcome(c, err)).Inc()
		return err
	}
}

func outcome(c echo.Context, err error) string {
	if err == nil {
		if c.Response().Header().Get(idempotency.ReplayedHeader) == "true" {
			return OutcomeReplayed
		}
		return OutcomeOK
	}
	status, code := problem.Describe(c, err)
	switch {
	case code == CodeConcurrentModification:
		return OutcomeConflict
	case status == http.StatusPreconditionFailed:
		return OutcomePrecondFail
	case status == http.StatusForbidden, status == http.StatusNotFound,
		status == http.StatusConflict, status == http.StatusUnprocessableEntity:
		return OutcomeRejected
	case status < 500 && status != problem.StatusClientClosedRequest:
		return OutcomeInvalid
	default:
		return OutcomeError
	}
}
