package httpapi

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/problem"
)

// minVersion reads ?minVersion: 0 when absent, else a positive version.
func minVersion(c echo.Context) (int, error) {
	vals, ok := c.QueryParams()["minVersion"]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < 1 {
		return 0, problem.New(problem.Malformed, CodeInvalidMinVersion,
			"minVersion must be a positive integer: the version a command returned")
	}
	return n, nil
}

// at reads ?at: the zero time when absent, else an RFC 3339 timestamp.
func at(c echo.Context) (time.Time, bool, error) {
	vals, ok := c.QueryParams()["at"]
	if !ok {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, vals[0])
	if err != nil {
		return time.Time{}, false, problem.New(problem.Malformed, CodeInvalidAt,
			"at must be an RFC 3339 timestamp, e.g. 2026-03-01T09:30:00Z (a + in the offset must be sent as %2B)")
	}
	return t, true, nil
}
