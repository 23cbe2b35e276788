package main

import (
	"slices"
	"testing"
)

func TestPerfTop(t *testing.T) {
	const out = `# To display the perf.data header info, please use --header/--header-only options.
#
# Samples: 3K of event 'cpu-clock:ppp'
# Event count (approx.): 17924623000
#
# Overhead  Symbol
# ........  ....................................
#
    12.34%  [.] runtime.mallocgc                       -      -  
     4.10%  [k] finish_task_switch.isra.0
     0.51%  [.] github.com/jackc/pgx/v5/pgconn.(*PgConn).receiveMessage


#
# (Tip: ...)
#
`
	want := []string{"Samples: 3K of event 'cpu-clock:ppp'", "12.34% [.] runtime.mallocgc", "4.10% [k] finish_task_switch.isra.0", "0.51% [.] github.com/jackc/pgx/v5/pgconn.(*PgConn).receiveMessage"}
	if got := perfTop(out); !slices.Equal(got, want) {
		t.Fatalf("perfTop = %q, want %q", got, want)
	}
}

func TestPprofTop(t *testing.T) {
	const out = `File: command
Type: cpu
Duration: 9s, Total samples = 6.21s (69.00%)
Showing nodes accounting for 2.50s, 40.26% of 6.21s total
Dropped 300 nodes (cum <= 0.03s)
      flat  flat%   sum%        cum   cum%
     1.20s 19.32% 19.32%      1.20s 19.32%  runtime/internal/syscall.Syscall6
     0.30s  4.83% 24.15%      0.50s  8.05%  runtime.mallocgc
`
	got := pprofTop(out)
	want := []string{
		"Showing nodes accounting for 2.50s, 40.26% of 6.21s total",
		"      flat  flat%   sum%        cum   cum%",
		"     1.20s 19.32% 19.32%      1.20s 19.32%  runtime/internal/syscall.Syscall6",
		"     0.30s  4.83% 24.15%      0.50s  8.05%  runtime.mallocgc",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pprofTop = %q, want %q", got, want)
	}
}
