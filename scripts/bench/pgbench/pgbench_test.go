package pgbench

import "testing"

func TestParse(t *testing.T) {
	const pg15 = `pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: bench/pgbench/load_append.sql
scaling factor: 1
query mode: prepared
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 1707
number of failed transactions: 3 (0.176%)
latency average = 6.821 ms
initial connection time = 101.473 ms
tps = 586.422414 (without initial connection time)
`
	r, err := Parse(pg15)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transactions != 1707 || r.Failed != 3 || r.TPS != 586.422414 || r.LatencyMs != 6.821 {
		t.Fatalf("Parse = %+v", r)
	}

	t.Run("OKWithoutFailureLine", func(t *testing.T) {
		r, err := Parse("number of transactions actually processed: 10\ntps = 5.5 (without initial connection time)\n")
		if err != nil || r.Transactions != 10 || r.Failed != 0 || r.TPS != 5.5 {
			t.Fatalf("Parse = %+v, %v", r, err)
		}
	})
	for name, out := range map[string]string{
		"ErrAborted": "pgbench: error: client 0 script 0 aborted in command 1 query 0: ERROR:  relation \"events\" does not exist\n",
		"ErrNoTPS":   "number of transactions actually processed: 10\n",
		"ErrEmpty":   "",
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := Parse(out); err == nil {
				t.Fatalf("Parse = %+v, want an error", r)
			}
		})
	}
}
