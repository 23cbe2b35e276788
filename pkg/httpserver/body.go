package httpserver

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/problem"
)

// readBody reads the whole (already size-limited) body before next runs, so
// that a body the client broke — chunk framing that does not parse, fewer
// bytes than its Content-Length or chunk size promised — is the client's
// 400 and never reaches a handler's decision halfway. A body over the limit
// keeps its 413; a body that trickles past the server's read timeout is a
// 408. The handler reads the buffered bytes.
// bodyLimitBytes is BodyLimit in bytes.
const bodyLimitBytes = 64 << 10

func readBody(c echo.Context, next echo.HandlerFunc) error {
	req := c.Request()
	var buf bytes.Buffer
	if n := req.ContentLength; n > 0 && n <= bodyLimitBytes {
		buf.Grow(int(n))
	}
	if _, err := buf.ReadFrom(req.Body); err != nil {
		return bodyError(err)
	}
	req.Body = io.NopCloser(&buf)
	return next(c)
}

func bodyError(err error) error {
	var he *echo.HTTPError
	if errors.As(err, &he) { // the body limit's 413
		return err
	}
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		return &echo.HTTPError{Code: http.StatusRequestTimeout, Message: "the request body did not arrive in time", Internal: err}
	}
	return &problem.Error{Kind: problem.Malformed, Code: "malformed-body", Err: err,
		Detail: "the request body could not be read: its framing is broken or it ended early"}
}

// ambiguousHeaders refuses a request whose headers can be read two ways:
// two Authorization headers (which one is the caller?) or a body framed
// by both Content-Length and Transfer-Encoding (RFC 9112 §6.3: a request
// smuggling attempt, to be handled as an error).
func ambiguousHeaders(req *http.Request) error {
	if len(req.Header.Values(echo.HeaderAuthorization)) > 1 {
		return problem.New(problem.Malformed, "malformed-request", "the request has more than one Authorization header")
	}
	if ambiguousFraming(req) {
		return problem.New(problem.Malformed, "malformed-request", "the request has both Content-Length and Transfer-Encoding")
	}
	return nil
}
