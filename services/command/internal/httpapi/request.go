package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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

// decode reads a JSON object body into v exactly as the OpenAPI document
// describes it: Content-Type application/json, names matched case-sensitively,
// no duplicate, unknown or null members, no trailing data. An empty body is
// accepted (v keeps its zero value) only when optional. Every refusal is a
// 400 malformed-body whose detail names the member.
func decode(c echo.Context, v any, optional bool) error {
	req := c.Request()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		// The body limit middleware's 413 (an *echo.HTTPError) passes
		// through to the problem handler.
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return problem.Wrap(problem.TooLarge, "", err)
		}
		return fmt.Errorf("httpapi: read body: %w", err)
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
	dec := jsontext.NewDecoder(bytes.NewReader(trimmed), bodyOptions)
	if err := json.UnmarshalDecode(dec, v, bodyOptions); err != nil {
		return problem.New(problem.Malformed, codeMalformedBody, jsonDetail(err))
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return problem.New(problem.Malformed, codeMalformedBody, "unexpected data after the JSON object")
	}
	return nil
}

// bodyOptions are go-json-experiment's defaults (case-sensitive names,
// duplicate names refused) with unknown members refused too, and null
// refused for a value of any Go type: no request schema has a null, and the
// decoder would otherwise read it as the zero value ("reason": null as the
// default reason).
var bodyOptions = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.WithUnmarshalers(json.UnmarshalFromFunc(refuseNull)),
)

var errNull = errors.New("null is not a value of this member")

// refuseNull fails on a JSON null and leaves any other value to the
// decoder's own rules (errors.ErrUnsupported: nothing was read).
func refuseNull(dec *jsontext.Decoder, _ any) error {
	if dec.PeekKind() == 'n' {
		return errNull
	}
	return errors.ErrUnsupported
}

// jsonDetail says what is wrong with a body in words meant for the client,
// naming the member where the decoder knows it.
func jsonDetail(err error) string {
	var (
		syntax   *jsontext.SyntacticError
		semantic *json.SemanticError
	)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON body ends too early"
	case errors.As(err, &syntax) && errors.Is(syntax.Err, jsontext.ErrDuplicateName):
		return fmt.Sprintf("field %q appears more than once", member(syntax.JSONPointer))
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.ByteOffset)
	case errors.As(err, &semantic) && errors.Is(semantic.Err, json.ErrUnknownName):
		return fmt.Sprintf("unknown field %q (names are case-sensitive)", member(semantic.JSONPointer))
	case errors.As(err, &semantic) && errors.Is(semantic.Err, errNull):
		return fmt.Sprintf("field %q must not be null", member(semantic.JSONPointer))
	case errors.As(err, &semantic) && semantic.GoType != nil:
		return fmt.Sprintf("field %q must be a JSON %s", member(semantic.JSONPointer), jsonType(semantic.GoType.Kind()))
	case errors.As(err, &semantic):
		return fmt.Sprintf("field %q has an unreadable value", member(semantic.JSONPointer))
	}
	return "malformed JSON"
}

// member names the member a JSON pointer points at: its name at the top
// level, else the whole pointer.
func member(p jsontext.Pointer) string {
	if p.Parent() == "" {
		return p.LastToken()
	}
	return string(p)
}

func jsonType(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Bool:
		return "boolean"
	}
	return k.String()
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

// canonical is a cart id as stored and returned: lower case. UUIDs are
// case-insensitive (RFC 9562 §4), so an id in any case names the same cart,
// here and on the query API; forms other than the 36-character one are not
// ids (the repository answers them cart-not-found).
func canonical(cartID string) string { return strings.ToLower(cartID) }
