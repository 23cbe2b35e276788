// Package envconf reads typed configuration from the environment in a
// service's composition root. It collects every malformed value instead of
// stopping at the first, so one start-up attempt reports all mistakes.
package envconf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"
)

// Env looks a variable up, like os.LookupEnv. Tests pass a map's lookup.
type Env func(key string) (string, bool)

// Map adapts a map to Env, for tests.
func Map(m map[string]string) Env {
	return func(key string) (string, bool) { v, ok := m[key]; return v, ok }
}

// Reader reads variables and remembers what was malformed. It is not safe
// for concurrent use; it lives for the few lines that build a Config.
type Reader struct {
	env  Env
	errs []error
}

// New returns a Reader over env; a nil env means os.LookupEnv.
func New(env Env) *Reader {
	if env == nil {
		env = os.LookupEnv
	}
	return &Reader{env: env}
}

// lookup treats a variable set to the empty string as unset, because
// compose files and shells often write `KEY=` to mean "use the default".
func (r *Reader) lookup(key string) (string, bool) {
	v, ok := r.env(key)
	if !ok || v == "" {
		return "", false
	}
	return v, true
}

func (r *Reader) fail(key, value, want string, err error) {
	r.errs = append(r.errs, fmt.Errorf("envconf: %s=%q: want %s: %w", key, value, want, err))
}

// String returns the variable, or def when it is unset or empty.
func (r *Reader) String(key, def string) string {
	if v, ok := r.lookup(key); ok {
		return v
	}
	return def
}

// Int returns the variable as a decimal integer, or def.
func (r *Reader) Int(key string, def int) int {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(key, v, "an integer", err)
		return def
	}
	return n
}

// Duration returns the variable as a Go duration ("1.5s", "2m"), or def.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(key, v, "a duration like 500ms or 2m", err)
		return def
	}
	return d
}

// Bool returns the variable as a boolean (1/0, t/f, true/false), or def.
func (r *Reader) Bool(key string, def bool) bool {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(key, v, "true or false", err)
		return def
	}
	return b
}

// Level reads a log level: debug, info, warn or error.
func (r *Reader) Level(key string, def slog.Level) slog.Level {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.fail(key, v, "debug, info, warn or error", err)
		return def
	}
	return l
}

// Bytes returns the variable's raw bytes (for secrets), or nil when it is
// unset or empty. Whether nil is acceptable is for the consumer to decide.
func (r *Reader) Bytes(key string) []byte {
	if v, ok := r.lookup(key); ok {
		return []byte(v)
	}
	return nil
}

// Err joins every malformed value seen so far, or returns nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }
