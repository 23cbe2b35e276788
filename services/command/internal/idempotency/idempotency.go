// Package idempotency is the command service's Idempotency-Key contract,
// shared by the HTTP API, which reads the header and answers with the stored
// response, and the PostgreSQL adapter, which stores that response in the same
// transaction as the command's events: what a keyed request is, how it is
// fingerprinted and what a retry gets back.
//
// The behaviour follows Stripe's API: a key belongs to one caller; the same
// key with the same request returns the first response and runs nothing; the
// same key with another request is refused; keys expire. Unlike Stripe, only
// successful responses (no-ops included) are stored: a refused command wrote
// nothing, so its retry is simply decided again.
package idempotency

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"
)

// Headers of the contract.
const (
	// Header carries the client's key on a command.
	Header = "Idempotency-Key"
	// ReplayedHeader is "true" on a response that was stored for an earlier
	// request with the same key.
	ReplayedHeader = "Idempotent-Replayed"
)

// DefaultTTL is how long a key is remembered by default.
const DefaultTTL = 24 * time.Hour

// validKey is what the key column accepts (migrations/sql/00006).
var validKey = regexp.MustCompile(`^[\x20-\x7e]{1,255}$`)

// ValidKey reports whether key is 1 to 255 printable ASCII characters.
func ValidKey(key string) bool { return validKey.MatchString(key) }

// Request is a command sent with an Idempotency-Key.
type Request struct {
	// Caller is whose key it is: the principal's subject. The same key sent
	// by two callers is two keys.
	Caller string
	// Key is the header's value.
	Key string
	// Method and Path are the route, with the actual cart id in the path.
	Method, Path string
	// Hash fingerprints the request (Fingerprint of Method, Path and body).
	Hash []byte
}

// ErrKeyReused is what a key sent with another request than the one it was
// first used for gets (as a *KeyReusedError).
var ErrKeyReused = errors.New("idempotency: key already used for another request")

// KeyReusedError refuses a key used before for another request: another
// route (Method and Path are the first one's), or the same route with
// another body (OtherBody).
type KeyReusedError struct {
	Method, Path string
	OtherBody    bool
}

func (e *KeyReusedError) Error() string {
	if e.OtherBody {
		return ErrKeyReused.Error() + ": another body"
	}
	return ErrKeyReused.Error() + ": " + e.Method + " " + e.Path
}

func (e *KeyReusedError) Is(target error) bool { return target == ErrKeyReused }

// Response is a successful command's response as it is stored.
type Response struct {
	// Status is the HTTP status (2xx).
	Status int
	// Body is the JSON body, byte for byte.
	Body []byte
	// CartID and Version are the cart the command ran on and its version
	// after the command (the ETag).
	CartID  string
	Version int
	// Replayed is true when the response was stored for an earlier request
	// with the same key and nothing ran this time.
	Replayed bool
}

// Result is the body of every successful command: the cart and its stream
// version after the command (also sent as the ETag).
type Result struct {
	CartID  string `json:"cartId"`
	Version int    `json:"version"`
}

// Succeeded is the response to a command that left the cart at version: 201
// when it opened the cart, else 200, with the Result. A key stores it before
// the command commits, so that a retry is answered byte for byte as the
// first request was.
func Succeeded(cartID string, version int, created bool) (Response, error) {
	body, err := json.Marshal(Result{CartID: cartID, Version: version})
	if err != nil {
		return Response{}, fmt.Errorf("idempotency: response for cart %s: %w", cartID, err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return Response{Status: status, Body: append(body, '\n'), CartID: cartID, Version: version}, nil
}

// Fingerprint is the SHA-256 of a request: its method, its path and its body
// re-encoded from the decoded command (so whitespace, field order and an
// empty body versus "{}" do not make two requests differ).
func Fingerprint(method, path string, body any) ([]byte, error) {
	canonical, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("idempotency: fingerprint %s %s: %w", method, path, err)
	}
	h := sha256.New()
	// Length prefixes keep the parts from running into each other.
	fmt.Fprintf(h, "%d:%s%d:%s", len(method), method, len(path), path)
	h.Write(canonical)
	return h.Sum(nil), nil
}
