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
	"fmt"
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

// Problem codes of the contract.
const (
	// CodeInvalidKey (400): the header is not 1 to 255 printable ASCII
	// characters, or was sent twice.
	CodeInvalidKey = "invalid-idempotency-key"
	// CodeKeyReused (422): the key was used for another request.
	CodeKeyReused = "idempotency-key-reused"
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
	// Respond renders the response to the command from what it did; it is
	// stored with the key. It may run several times (once per attempt) and
	// must have no side effects.
	Respond func(cartID string, version int, created bool) (Response, error)
}

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
