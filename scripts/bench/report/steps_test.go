package report

import (
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// step is an open-loop step at rate whose commands took cmd and whose
// read-backs took lagged.
func step(t *testing.T, rate int, cmd time.Duration, failed int, lagged ...time.Duration) load.Result {
	t.Helper()
	return *withLag(t, openRun(t, load.OpAdd, rate, cmd, failed), lagged...)
}

func TestJudgeStep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		run        load.Result
		notSent    int64
		pass, over bool
		why        string
	}{
		{"OK", step(t, 500, 3*time.Millisecond, 0, 2*time.Millisecond), 0, true, false, ""},
		{"OKJustWithinTheLimits", step(t, 500, 9900*time.Microsecond, 0, 24900*time.Microsecond), 0, true, false, ""},
		{"ErrCommandsLate", step(t, 500, 12*time.Millisecond, 0, 2*time.Millisecond), 0, false, false, "command p99 12.0 ms > 10 ms"},
		{"ErrLagLate", step(t, 500, 2*time.Millisecond, 0, 30*time.Millisecond), 0, false, false, "lag p99 30.0 ms > 25 ms"},
		{"ErrAFailure", step(t, 500, 2*time.Millisecond, 1, 2*time.Millisecond), 0, false, false, "1 commands failed"},
		{"ErrNoLag", *openRun(t, load.OpAdd, 500, 2*time.Millisecond, 0), 0, false, false, "no lag measured"},
		{"OverloadedCommands", step(t, 1000, 600*time.Millisecond, 0, 60*time.Millisecond), 0, false, true, "command p99 600"},
		{"OverloadedLag", step(t, 1000, 5*time.Millisecond, 0, 200*time.Millisecond), 0, false, true, "lag p99 200"},
		{"OverloadedNotSent", step(t, 1000, 5*time.Millisecond, 0, 2*time.Millisecond), 7, false, true, "7 not sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run.NotSent = tc.notSent
			v := JudgeStep(tc.run)
			if v.Pass != tc.pass || v.Overloaded != tc.over || !strings.HasPrefix(v.Why, tc.why) {
				t.Fatalf("JudgeStep = %+v, want pass %v, overloaded %v, why %q", v, tc.pass, tc.over, tc.why)
			}
		})
	}
	t.Run("ErrNothingAnswered", func(t *testing.T) {
		if v := JudgeStep(load.Result{Mode: load.Open, Rate: 100}); v.Pass || !v.Overloaded {
			t.Fatalf("JudgeStep of nothing = %+v", v)
		}
	})
}

func TestSustainable(t *testing.T) {
	t.Parallel()
	ok := func(rate int) load.Result { return step(t, rate, 2*time.Millisecond, 0, 2*time.Millisecond) }
	bad := func(rate int) load.Result { return step(t, rate, 30*time.Millisecond, 0, 2*time.Millisecond) }
	for _, tc := range []struct {
		name  string
		steps []load.Result
		rate  float64
		found bool
	}{
		{"OKHighestPassed", []load.Result{ok(50), ok(250), ok(500), bad(1000), bad(1000)}, 500, true},
		{"OKEveryStep", []load.Result{ok(50), ok(500), ok(1000)}, 1000, true},
		{"OKPassedOnTheSecondAttempt", []load.Result{ok(50), bad(500), ok(500), bad(1000), bad(1000)}, 500, true},
		{"OKNotAboveAFailedRate", []load.Result{ok(50), bad(250), bad(250), ok(500), ok(1000)}, 50, true},
		{"OKOrderOfRunsDoesNotMatter", []load.Result{ok(500), ok(50), bad(1000)}, 500, true},
		{"ErrLowestFailed", []load.Result{bad(50), bad(50), bad(500), ok(1000)}, 0, false},
		{"ErrNoSteps", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rate, found := Sustainable(tc.steps)
			if rate != tc.rate || found != tc.found {
				t.Fatalf("Sustainable = %v, %v; want %v, %v", rate, found, tc.rate, tc.found)
			}
		})
	}
}

func TestStepAt(t *testing.T) {
	t.Parallel()
	first := step(t, 500, 30*time.Millisecond, 0, time.Millisecond)
	again := step(t, 500, 3*time.Millisecond, 0, time.Millisecond)
	got, ok := StepAt([]load.Result{step(t, 50, time.Millisecond, 0, time.Millisecond), first, again}, 500)
	if !ok || got.Commands().Latency.P99 != again.Commands().Latency.P99 {
		t.Fatalf("StepAt = %v, %v; want the last attempt", got.Commands().Latency, ok)
	}
	if _, ok := StepAt(nil, 500); ok {
		t.Fatal("a step found in nothing")
	}
}
