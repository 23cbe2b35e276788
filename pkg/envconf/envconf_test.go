package envconf_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/envconf"
)

func TestReader(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		r := envconf.New(envconf.Map(map[string]string{
			"ADDR": ":9090", "N": "42", "D": "1500ms", "B": "true", "SECRET": "s3cr3t", "EMPTY": "",
		}))
		if got := r.String("ADDR", ":8080"); got != ":9090" {
			t.Errorf("String = %q", got)
		}
		if got := r.Int("N", 1); got != 42 {
			t.Errorf("Int = %d", got)
		}
		if got := r.Duration("D", time.Second); got != 1500*time.Millisecond {
			t.Errorf("Duration = %v", got)
		}
		if got := r.Bool("B", false); !got {
			t.Errorf("Bool = %v", got)
		}
		if got := string(r.Bytes("SECRET")); got != "s3cr3t" {
			t.Errorf("Bytes = %q", got)
		}
		if err := r.Err(); err != nil {
			t.Errorf("Err = %v", err)
		}
	})
	t.Run("Defaults", func(t *testing.T) {
		r := envconf.New(envconf.Map(map[string]string{"EMPTY": ""}))
		if r.String("EMPTY", "def") != "def" || r.String("UNSET", "d2") != "d2" || r.Int("UNSET", 7) != 7 ||
			r.Duration("UNSET", time.Minute) != time.Minute || !r.Bool("EMPTY", true) || r.Bytes("UNSET") != nil {
			t.Error("unset or empty variables must yield the defaults")
		}
		if err := r.Err(); err != nil {
			t.Errorf("Err = %v", err)
		}
	})
	t.Run("ErrCollectsEveryMalformedValue", func(t *testing.T) {
		r := envconf.New(envconf.Map(map[string]string{"N": "forty", "D": "5 minutes", "B": "yes please"}))
		if got := r.Int("N", 3); got != 3 {
			t.Errorf("malformed Int = %d, want the default", got)
		}
		r.Duration("D", 0)
		r.Bool("B", false)
		err := r.Err()
		if err == nil {
			t.Fatal("Err = nil, want the three malformed values")
		}
		for _, key := range []string{"N=", "D=", "B="} {
			if !strings.Contains(err.Error(), key) {
				t.Errorf("Err %q does not name %s", err, key)
			}
		}
	})
	t.Run("DefaultsToProcessEnvironment", func(t *testing.T) {
		t.Setenv("ENVCONF_TEST_VALUE", "from-os")
		if got := envconf.New(nil).String("ENVCONF_TEST_VALUE", ""); got != "from-os" {
			t.Errorf("String = %q", got)
		}
	})
}

func TestLevel(t *testing.T) {
	r := envconf.New(envconf.Map(map[string]string{"A": "debug", "B": "loud"}))
	if got := r.Level("A", slog.LevelInfo); got != slog.LevelDebug {
		t.Errorf("Level(A) = %v", got)
	}
	if got := r.Level("C", slog.LevelWarn); got != slog.LevelWarn {
		t.Errorf("Level(C) = %v, want the default", got)
	}
	if got := r.Level("B", slog.LevelInfo); got != slog.LevelInfo || r.Err() == nil || !strings.Contains(r.Err().Error(), "B=") {
		t.Errorf("Level(B) = %v, err %v", got, r.Err())
	}
}
