package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// API sends the cart's HTTP requests: commands to the command service,
// reads to the query service (or to anything that serves GET
// /v1/carts/{id}, like the raw read baseline).
//
// It uses fasthttp's client, which does a request's I/O on the calling
// goroutine: net/http's client hands every request to two goroutines per
// connection, and on a small machine that the load generator shares with
// the system under test, those hand-offs cost the system a good part of a
// CPU.
type API struct {
	commandURL, queryURL string
	client               *fasthttp.Client
	timeout              time.Duration
	idempotency          bool
}

// NewAPI returns an API over at most conns connections per service.
func NewAPI(commandURL, queryURL string, conns int, timeout time.Duration, idempotency bool) *API {
	return &API{
		commandURL: commandURL, queryURL: queryURL, timeout: timeout, idempotency: idempotency,
		client: &fasthttp.Client{
			MaxConnsPerHost:               conns,
			MaxConnWaitTimeout:            timeout,
			MaxIdleConnDuration:           time.Minute,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: true,
			DisablePathNormalizing:        true,
		},
	}
}

// Close releases the idle connections.
func (a *API) Close() { a.client.CloseIdleConnections() }

// Reply is what a request got back.
type Reply struct {
	Status int `json:"-"`
	// Code is the problem's code on a 4xx/5xx answer.
	Code    string `json:"-"`
	CartID  string `json:"cartId"`
	Version int    `json:"version"`
	// Lines are the cart's lines, on a decoded read.
	Lines []struct {
		ProductID string `json:"productId"`
		Quantity  int    `json:"quantity"`
	} `json:"lines"`
}

// OK reports a 2xx answer.
func (r Reply) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Reason classifies a failed answer for the failure counts.
func (r Reply) Reason() string {
	if r.Code == "" {
		return strconv.Itoa(r.Status)
	}
	return strconv.Itoa(r.Status) + " " + r.Code
}

// itemBody is the body of add-item, change-quantity and remove-item.
type itemBody struct {
	ProductID string `json:"productId"`
	Quantity  int    `json:"quantity,omitempty"`
}

// Command sends act as the shopper; its cart is s.CartID
// except for an open.
func (a *API) Command(ctx context.Context, s *Shopper, act Action) (Reply, error) {
	path := "/v1/carts"
	var body any
	switch act.Op {
	case OpOpen:
	case OpAdd:
		path += "/" + s.CartID + "/add-item"
		body = itemBody{act.ProductID, act.Quantity}
	case OpChange:
		path += "/" + s.CartID + "/change-quantity"
		body = itemBody{act.ProductID, act.Quantity}
	case OpRemove:
		path += "/" + s.CartID + "/remove-item"
		body = itemBody{ProductID: act.ProductID}
	case OpCheckout:
		path += "/" + s.CartID + "/checkout"
	default:
		return Reply{}, fmt.Errorf("load: %s is not a command", act.Op)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(a.commandURL + path)
	if body != nil {
		payload, err := json.Marshal(body)
		if err != nil {
			return Reply{}, fmt.Errorf("load: %s body: %w", act.Op, err)
		}
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(payload)
	}
	if a.idempotency {
		req.Header.Set("Idempotency-Key", newKey())
	}
	return a.do(ctx, req, s.Token, true)
}

// Read gets a cart from the query side; with minVersion > 0 the service
// waits until it has that version (read your writes). With decode, the
// reply carries the document's version and lines; without, only the status.
func (a *API) Read(ctx context.Context, token, cartID string, minVersion int, decode bool) (Reply, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	uri := a.queryURL + "/v1/carts/" + cartID
	if minVersion > 0 {
		uri += "?minVersion=" + strconv.Itoa(minVersion)
	}
	req.SetRequestURI(uri)
	return a.do(ctx, req, token, decode)
}

// do sends req with the token; decode says whether a 2xx body is worth
// decoding. It gives up at the request timeout or ctx's deadline, whichever
// comes first.
func (a *API) do(ctx context.Context, req *fasthttp.Request, token string, decode bool) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	deadline := time.Now().Add(a.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := a.client.DoDeadline(req, resp, deadline); err != nil {
		return Reply{}, err
	}
	r := Reply{Status: resp.StatusCode()}
	if !r.OK() {
		var p struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(resp.Body(), &p) == nil {
			r.Code = p.Code
		}
		return r, nil
	}
	if !decode {
		return r, nil
	}
	if err := json.Unmarshal(resp.Body(), &r); err != nil {
		return Reply{}, fmt.Errorf("load: decode %s %s answer: %w", req.Header.Method(), req.URI().Path(), err)
	}
	return r, nil
}

// newKey is a fresh Idempotency-Key.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// transportReason classifies a request that got no answer.
func transportReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no free connection"
	default:
		return "transport error"
	}
}
