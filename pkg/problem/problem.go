// Package problem is the one place where an error becomes an HTTP status and
// an RFC 9457 problem body. Every service installs HTTPErrorHandler, so the
// mapping from "what went wrong" to "what the client sees" is decided here and
// nowhere else.
package problem

import "net/http"

// Kind classifies an error by what the client should do about it. Each kind
// has exactly one HTTP status.
type Kind int

// The kinds, in the vocabulary of the API contract.
const (
	Internal             Kind = iota // 500: our fault; the client sees only "internal error".
	Malformed                        // 400: the request cannot be parsed.
	Unauthorized                     // 401: no or invalid credentials.
	Forbidden                        // 403: the caller may not do this.
	NotFound                         // 404: unknown, or someone else's, resource.
	Conflict                         // 409: a business rule forbids it in the current state.
	PreconditionFailed               // 412: If-Match did not match.
	TooLarge                         // 413: the body exceeds the limit.
	UnsupportedMediaType             // 415: the body is not JSON.
	Invalid                          // 422: a value is out of range.
	RateLimited                      // 429: slow down.
	Unavailable                      // 503: a dependency is down; retry later.
)

type kindInfo struct {
	status int
	code   string // default code when none is given
	title  string
}

// table is the error→HTTP table. Adding a kind means adding a row here.
var table = map[Kind]kindInfo{
	Internal:             {http.StatusInternalServerError, "internal", "Internal Server Error"},
	Malformed:            {http.StatusBadRequest, "malformed-request", "Malformed request"},
	Unauthorized:         {http.StatusUnauthorized, "unauthorized", "Unauthorized"},
	Forbidden:            {http.StatusForbidden, "forbidden", "Forbidden"},
	NotFound:             {http.StatusNotFound, "not-found", "Not found"},
	Conflict:             {http.StatusConflict, "conflict", "Conflict"},
	PreconditionFailed:   {http.StatusPreconditionFailed, "precondition-failed", "Precondition failed"},
	TooLarge:             {http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large"},
	UnsupportedMediaType: {http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"},
	Invalid:              {http.StatusUnprocessableEntity, "invalid", "Invalid value"},
	RateLimited:          {http.StatusTooManyRequests, "rate-limited", "Too many requests"},
	Unavailable:          {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
}

func (k Kind) info() kindInfo {
	if i, ok := table[k]; ok {
		return i
	}
	return table[Internal]
}

// Status is the HTTP status of the kind; unknown kinds are 500.
func (k Kind) Status() int { return k.info().status }

// Title is the short, fixed human summary of the kind.
func (k Kind) Title() string { return k.info().title }

// String returns the kind's default code, e.g. "precondition-failed".
func (k Kind) String() string { return k.info().code }

// kindForStatus maps an HTTP status back to a kind, for errors that only
// carry a status (echo's own errors).
func kindForStatus(status int) (Kind, bool) {
	for k, i := range table {
		if i.status == status {
			return k, true
		}
	}
	return Internal, false
}
