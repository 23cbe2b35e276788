package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// HeaderCorrelationID is answered with the correlation id the events got.
const HeaderCorrelationID = httpserver.HeaderCorrelationID

// caller returns who is acting and the metadata their events carry: the
// actor, the correlation id (the client's X-Correlation-Id if sane, else this
// request's id), the causation id (this request's id) and the trace context
// of this request's span, stored with the events so that their publication
// and projection join the request's trace.
func caller(c echo.Context) (cart.Actor, envelope.Metadata, error) {
	p, ok := auth.FromContext(c)
	if !ok {
		return cart.Actor{}, envelope.Metadata{}, problem.New(problem.Unauthorized, auth.CodeUnauthorized, "no authenticated caller")
	}
	ctx := c.Request().Context()
	requestID := c.Response().Header().Get(echo.HeaderXRequestID)
	md := envelope.Metadata{Actor: p.Subject, CorrelationID: telemetry.CorrelationID(ctx), CausationID: requestID}
	if md.CorrelationID == "" {
		md.CorrelationID = requestID
	}
	md.TraceParent, md.TraceState = telemetry.TraceContext(ctx)
	c.Response().Header().Set(HeaderCorrelationID, md.CorrelationID)
	return cart.Actor{ID: p.Subject, System: p.IsSystem()}, md, nil
}

// Problem codes for requests that cannot be read.
const (
	codeMalformedBody    = "malformed-body"
	codeUnsupportedMedia = "unsupported-media-type"
)

// decode reads a JSON object body into v strictly: Content-Type
// application/json, no unknown fields, no trailing data. An empty body is
// accepted (v keeps its zero value) only when optional.
func decode(c echo.Context, v any, optional bool) error {
	req := c.Request()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		// The body limit middleware's 413 (an *echo.HTTPError) passes as is.
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return problem.Wrap(problem.TooLarge, "", err)
		}
		return err
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		if optional {
			return nil
		}
		return problem.New(problem.Malformed, codeMalformedBody, "a JSON object body is required")
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		return problem.New(problem.UnsupportedMediaType, codeUnsupportedMedia, "the body must be JSON, sent as Content-Type: application/json")
	}
	if trimmed[0] != '{' {
		return problem.New(problem.Malformed, codeMalformedBody, "the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.New(problem.Malformed, codeMalformedBody, jsonDetail(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.New(problem.Malformed, codeMalformedBody, "unexpected data after the JSON object")
	}
	return nil
}

// jsonDetail says what is wrong with a body in words meant for the client.
func jsonDetail(err error) string {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("field %q must be a JSON %s", typ.Field, jsonType(typ.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON body ends too early"
	default:
		// encoding/json's remaining messages (e.g. an unknown field) are
		// written for API clients.
		return strings.TrimPrefix(err.Error(), "json: ")
	}
}

func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "integer"
	case kind == "struct", kind == "map":
		return "object"
	case kind == "slice", kind == "array":
		return "array"
	case kind == "bool":
		return "boolean"
	}
	return kind
}

// ifMatch parses If-Match into a check of the cart's current version: absent
// or "*" matches anything; otherwise one of the listed strong entity tags
// must be the version's ETag, or the command fails with 412. Weak tags never
// match (RFC 9110 §13.1.1: If-Match uses the strong comparison).
func ifMatch(h http.Header) (func(version int) error, error) {
	raw := strings.TrimSpace(h.Get("If-Match"))
	if raw == "" || raw == "*" {
		return func(int) error { return nil }, nil
	}
	var strong []string
	for tag := range strings.SplitSeq(raw, ",") {
		tag = strings.TrimSpace(tag)
		weak := strings.HasPrefix(tag, "W/")
		tag = strings.TrimPrefix(tag, "W/")
		if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' || strings.Contains(tag[1:len(tag)-1], `"`) {
			return nil, problem.New(problem.Malformed, "malformed-if-match",
				`If-Match must be "*" or a list of quoted versions, e.g. "3"`)
		}
		if !weak {
			strong = append(strong, tag[1:len(tag)-1])
		}
	}
	return func(version int) error {
		if slices.Contains(strong, strconv.Itoa(version)) {
			return nil
		}
		return problem.New(problem.PreconditionFailed, "version-mismatch",
			fmt.Sprintf("the cart is at version %d, not the one If-Match names", version))
	}, nil
}

// canonical is a cart id as stored and returned: lower case.
func canonical(cartID string) string { return strings.ToLower(cartID) }
