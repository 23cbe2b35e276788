package httpserver

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/problem"
)

// CheckTimeout bounds each readiness check; a dependency slower than this is
// as good as down for an orchestrator.
const CheckTimeout = 2 * time.Second

// Health mounts GET /healthz (the process is alive) and GET /readyz (every
// check passes) where probes expect them, on the API's port; /metrics is on
// the management address (ListenMetrics).
func Health(e *echo.Echo, checks map[string]func(ctx context.Context) error) {
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", readyz(checks))
}

type ready struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// notReady is a problem document (RFC 9457) naming the failing checks.
type notReady struct {
	problem.Body
	Failing []string          `json:"failing"`
	Checks  map[string]string `json:"checks"`
}

func readyz(checks map[string]func(ctx context.Context) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		statuses := make(map[string]string, len(checks))
		var failing []string
		for name, err := range runChecks(ctx, checks) {
			if err == nil {
				statuses[name] = "ok"
				continue
			}
			statuses[name] = "fail"
			failing = append(failing, name)
			// The reason goes to the logs: a probe's body is not the place
			// for host names and driver errors.
			loggerFrom(c).LogAttrs(ctx, slog.LevelWarn, "readiness check failed",
				slog.String("check", name), slog.Any("error", err))
		}
		if len(failing) == 0 {
			return c.JSON(http.StatusOK, ready{Status: "ok", Checks: statuses})
		}
		sort.Strings(failing)
		res := c.Response()
		res.Header().Set(echo.HeaderContentType, problem.ContentType)
		return c.JSON(http.StatusServiceUnavailable, notReady{
			Body: problem.Body{
				Type:      problem.TypeBase + "not-ready",
				Title:     problem.Unavailable.Title(),
				Status:    http.StatusServiceUnavailable,
				Detail:    "not ready: " + strings.Join(failing, ", "),
				Instance:  c.Request().URL.Path,
				Code:      "not-ready",
				RequestID: res.Header().Get(echo.HeaderXRequestID),
			},
			Failing: failing,
			Checks:  statuses,
		})
	}
}

type checkResult struct {
	name string
	err  error
}

// runChecks runs every check concurrently, each under CheckTimeout. A check
// that ignores its context is reported as timed out rather than holding the
// probe; its goroutine exits when the check returns (the channel is
// buffered), so nothing stays blocked.
func runChecks(ctx context.Context, checks map[string]func(ctx context.Context) error) map[string]error {
	results := make(map[string]error, len(checks))
	ch := make(chan checkResult, len(checks))
	for name, check := range checks {
		results[name] = context.DeadlineExceeded // until it reports
		go func() {
			cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
			defer cancel()
			ch <- checkResult{name, check(cctx)}
		}()
	}
	deadline := time.NewTimer(CheckTimeout + 100*time.Millisecond)
	defer deadline.Stop()
	for range checks {
		select {
		case r := <-ch:
			results[r.name] = r.err
		case <-deadline.C:
			return results
		}
	}
	return results
}
