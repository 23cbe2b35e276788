package httpapi

import (
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// queryParam returns the first value of the query parameter name, as
// c.QueryParams()[name][0] would. A short plain query (no escapes, no
// semicolons: what clients send, e.g. ?minVersion=7) is scanned in place;
// any other is parsed by url.ParseQuery as echo does, which builds a map.
func queryParam(c echo.Context, name string) (string, bool) {
	raw := c.Request().URL.RawQuery
	if raw == "" {
		return "", false
	}
	if len(raw) > maxPlainQuery || strings.ContainsAny(raw, "%+;") {
		vals, ok := c.QueryParams()[name]
		if !ok {
			return "", false
		}
		return vals[0], true
	}
	for pair := range strings.SplitSeq(raw, "&") {
		if key, value, _ := strings.Cut(pair, "="); key == name {
			return value, true
		}
	}
	return "", false
}

// maxPlainQuery bounds the queries queryParam scans itself: far fewer
// parameters fit in it than url.ParseQuery's default limit.
const maxPlainQuery = 256

// minVersionParam reads ?minVersion: 0 when absent, else a positive version.
func minVersionParam(c echo.Context) (int, error) {
	val, ok := queryParam(c, "minVersion")
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(val)
	if err != nil || n < 1 {
		return 0, problem.New(problem.Malformed, CodeInvalidMinVersion,
			"minVersion must be a positive integer: the version a command returned")
	}
	return n, nil
}

// at reads ?at: the zero time when absent, else an RFC 3339 timestamp.
func at(c echo.Context) (time.Time, bool, error) {
	val, ok := queryParam(c, "at")
	if !ok {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, val)
	if err != nil {
		return time.Time{}, false, problem.New(problem.Malformed, CodeInvalidAt,
			"at must be an RFC 3339 timestamp, e.g. 2026-03-01T09:30:00Z (a + in the offset must be sent as %2B)")
	}
	return t, true, nil
}

// cartRequest reads what every read of one cart takes: the caller, the cart
// id in its canonical spelling (a malformed one is a 404, like a missing
// cart, without touching Redis) and ?minVersion.
func cartRequest(c echo.Context) (p auth.Principal, cartID string, minVersion int, err error) {
	if p, err = principal(c); err != nil {
		return auth.Principal{}, "", 0, err
	}
	cartID, ok := cart.CanonicalID(c.Param("cartId"))
	if !ok {
		return auth.Principal{}, "", 0, errCartNotFound()
	}
	if minVersion, err = minVersionParam(c); err != nil {
		return auth.Principal{}, "", 0, err
	}
	return p, cartID, minVersion, nil
}

// errCartNotFound is the one answer for a missing cart, someone else's cart
// and a malformed id alike, so that none can be told apart.
func errCartNotFound() error {
	return problem.New(problem.NotFound, CodeCartNotFound, "cart not found")
}
