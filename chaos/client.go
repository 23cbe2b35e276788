package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cart-cqrs/cart/pkg/backoff"
)

// Client sends commands to the command service the way a careful client
// does: every command with an Idempotency-Key, retried with the same key
// while its outcome is unknown, and each one recorded in the ledger.
type Client struct {
	base   string
	http   *http.Client
	ledger *Ledger
	// MaxAttempts bounds the tries of one command (default 10, which with
	// the backoff spans several seconds: a restart of the service).
	MaxAttempts int
	// Backoff is about the pause before the first retry; it doubles up to
	// about 1s, jittered so that clients that failed together do not retry
	// together.
	Backoff time.Duration
}

// NewClient returns a client of the command service at base whose attempts
// each time out after timeout.
func NewClient(base string, ledger *Ledger, timeout time.Duration) *Client {
	return &Client{
		base:        base,
		ledger:      ledger,
		MaxAttempts: 10,
		Backoff:     50 * time.Millisecond,
		http: &http.Client{Timeout: timeout, Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second,
		}},
	}
}

// CloseIdle closes the client's idle keep-alive connections.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// attempt is what one try of a command came to.
type attempt struct {
	outcome Outcome
	unsent  bool // the request never left: the command is certainly not applied
	status  int
	version int
	body    string
	err     error
}

// Send runs cmd (ID, Customer, Kind, CartID, …) to a final outcome and
// records it. Retries stop once ctx ends, but the first try is always made.
func (c *Client) Send(ctx context.Context, token string, cmd *Command) *Command {
	if cmd.ID == "" {
		cmd.ID = "c-" + randomHex(12)
	}
	cmd.Start = time.Now()
	wait := backoff.New(c.Backoff, time.Second)
	sawUnknown := false
	var last attempt
	for {
		cmd.Attempts++
		last = c.try(token, cmd)
		if last.outcome == Unknown && !last.unsent {
			sawUnknown = true
		}
		if last.outcome != Unknown || cmd.Attempts >= c.MaxAttempts || ctx.Err() != nil {
			break
		}
		wait.Wait(ctx) // an ended ctx ends the loop above
	}
	cmd.End = time.Now()
	cmd.Status, cmd.Version, cmd.Result = last.status, last.version, last.body
	if last.err != nil {
		cmd.Err = last.err.Error()
	}
	switch {
	case last.outcome == OK:
		cmd.Outcome = OK
	case sawUnknown:
		// An earlier try may still commit: a 4xx now, or a refused
		// connection, does not settle it.
		cmd.Outcome = Unknown
	case last.unsent:
		cmd.Outcome = Failed
	default:
		cmd.Outcome = last.outcome
	}
	c.ledger.Add(cmd)
	return cmd
}

func (c *Client) try(token string, cmd *Command) attempt {
	path, body := route(cmd)
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return attempt{outcome: Failed, unsent: true, err: err}
		}
		rd = bytes.NewReader(b)
	}
	// net/http itself retries a request with an Idempotency-Key on a new
	// connection when a kept-alive one breaks: a refused dial may follow a
	// request that was sent. Only a try that wrote nothing is unsent.
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, c.base+path, rd)
	if err != nil {
		return attempt{outcome: Failed, unsent: true, err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", cmd.ID)
	req.Header.Set("X-Correlation-Id", cmd.ID)
	if cmd.IfMatch > 0 {
		req.Header.Set("If-Match", strconv.Quote(strconv.Itoa(cmd.IfMatch)))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" && !wrote.Load() {
			return attempt{outcome: Unknown, unsent: true, err: err}
		}
		return attempt{outcome: Unknown, err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := attempt{status: resp.StatusCode, body: string(b)}
	switch {
	case err != nil:
		a.outcome, a.err = Unknown, fmt.Errorf("read body: %w", err)
	case resp.StatusCode/100 == 2:
		var res struct {
			CartID  string `json:"cartId"`
			Version int    `json:"version"`
		}
		if err := json.Unmarshal(b, &res); err != nil || res.Version < 1 {
			a.outcome, a.err = Unknown, fmt.Errorf("2xx with body %q: %v", b, err)
			break
		}
		a.outcome, a.version = OK, res.Version
		if cmd.CartID == "" {
			cmd.CartID = res.CartID
		}
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		a.outcome = Failed
	default:
		a.outcome = Unknown
	}
	return a
}

// route is a command's path and JSON body.
func route(cmd *Command) (string, any) {
	type item struct {
		ProductID string `json:"productId"`
		Quantity  int    `json:"quantity"`
	}
	type product struct {
		ProductID string `json:"productId"`
	}
	switch cmd.Kind {
	case "open":
		return "/v1/carts", nil
	case "add-item", "change-quantity":
		return "/v1/carts/" + cmd.CartID + "/" + cmd.Kind, item{cmd.ProductID, cmd.Quantity}
	case "remove-item":
		return "/v1/carts/" + cmd.CartID + "/remove-item", product{cmd.ProductID}
	default:
		return "/v1/carts/" + cmd.CartID + "/" + cmd.Kind, nil
	}
}
