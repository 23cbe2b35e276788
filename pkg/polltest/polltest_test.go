package polltest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/polltest"
)

func TestUntilReturnsOnceTheCheckPasses(t *testing.T) {
	calls := 0
	polltest.Until(t, time.Minute, "the third call", func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("check ran %d times, want 3", calls)
	}
}

// fakeTB records a failure instead of ending the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f) // Fatalf does not return
}

func TestUntilFailsWithTheLastErrorAfterTheDeadline(t *testing.T) {
	tb := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != tb {
				panic(r)
			}
		}()
		polltest.True(tb, 30*time.Millisecond, "never", func() bool { return false })
	}()
	if tb.failed == "" {
		t.Fatal("True returned for a condition that never holds")
	}
	t.Log(tb.failed)
}
