package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/scripts/bench/procs"
	"github.com/cart-cqrs/cart/scripts/bench/report"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPostgresSeconds(t *testing.T) {
	const hz = 100
	backends := func(pids ...int) map[int]string {
		k := map[int]string{}
		for _, p := range pids {
			k[p] = pgBackend
		}
		return k
	}
	for _, tc := range []struct {
		name       string
		start, end reading
		want       float64
		parts      map[string]float64 // backends, shared, exited
	}{
		{
			name:  "OKChildrenAndPostmaster",
			start: reading{pgOK: true, postmaster: ticksOf{10, 0}, pgChildren: map[int]int64{1: 100, 2: 50}, pgKind: map[int]string{1: pgBackend, 2: pgShared}},
			end:   reading{pgOK: true, postmaster: ticksOf{12, 0}, pgChildren: map[int]int64{1: 130, 2: 60}, pgKind: map[int]string{1: pgBackend, 2: pgShared}},
			want:  0.42, // 2 + 30 + 10 ticks
			parts: map[string]float64{report.PartPGBackends: 0.30, report.PartPGShared: 0.12, report.PartPGExited: 0},
		},
		{
			name:  "OKAChildExitedIntoThePostmastersReapedTime",
			start: reading{pgOK: true, postmaster: ticksOf{10, 7}, pgChildren: map[int]int64{1: 100, 3: 40}, pgKind: backends(1, 3)},
			end:   reading{pgOK: true, postmaster: ticksOf{10, 7 + 55}, pgChildren: map[int]int64{1: 100}, pgKind: backends(1)}, // 3 ended at 55 ticks
			want:  0.15,                                                                                                         // 55 − 40
			parts: map[string]float64{report.PartPGBackends: 0, report.PartPGShared: 0, report.PartPGExited: 0.15},
		},
		{
			name:  "OKAChildStartedInTheWindow",
			start: reading{pgOK: true, postmaster: ticksOf{10, 0}, pgChildren: map[int]int64{}},
			end:   reading{pgOK: true, postmaster: ticksOf{10, 0}, pgChildren: map[int]int64{4: 25}, pgKind: backends(4)},
			want:  0.25,
			parts: map[string]float64{report.PartPGBackends: 0.25, report.PartPGShared: 0, report.PartPGExited: 0},
		},
		{
			name:  "OKOtherDatabasesLeftOut",
			start: reading{pgOK: true, pgChildren: map[int]int64{1: 100, 5: 500}, pgKind: map[int]string{1: pgBackend, 5: pgOther}},
			end:   reading{pgOK: true, pgChildren: map[int]int64{1: 110, 5: 900, 6: 300}, pgKind: map[int]string{1: pgBackend, 5: pgOther, 6: pgOther}},
			want:  0.10,
			parts: map[string]float64{report.PartPGBackends: 0.10, report.PartPGShared: 0, report.PartPGExited: 0},
		},
		{
			name:  "OKOtherDatabaseBackendThatEndedCountsOnlyItsWindow",
			start: reading{pgOK: true, pgChildren: map[int]int64{5: 500}, pgKind: map[int]string{5: pgOther}},
			end:   reading{pgOK: true, postmaster: ticksOf{0, 520}, pgChildren: map[int]int64{}},
			want:  0.20,
			parts: map[string]float64{report.PartPGBackends: 0, report.PartPGShared: 0, report.PartPGExited: 0.20},
		},
		{
			name:  "OKUnknownChildrenAreShared",
			start: reading{pgOK: true, pgChildren: map[int]int64{9: 10}},
			end:   reading{pgOK: true, pgChildren: map[int]int64{9: 30}},
			want:  0.20,
			parts: map[string]float64{report.PartPGBackends: 0, report.PartPGShared: 0.20, report.PartPGExited: 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, parts, ok, why := postgresSeconds(tc.start, tc.end, hz)
			if !ok || why != "" || !near(got, tc.want) {
				t.Fatalf("postgresSeconds = %v, %v, %q; want %v", got, ok, why, tc.want)
			}
			for k, v := range tc.parts {
				if !near(parts[k], v) {
					t.Errorf("part %s = %v, want %v (parts %v)", k, parts[k], v, parts)
				}
			}
		})
	}
	t.Run("ErrNotMeasured", func(t *testing.T) {
		_, _, ok, why := postgresSeconds(reading{pgWhy: "not measured: not on this machine"}, reading{pgWhy: "not measured: not on this machine"}, hz)
		if ok || why != "not measured: not on this machine" {
			t.Fatalf("ok %v, why %q", ok, why)
		}
	})
}

func TestUsage(t *testing.T) {
	const hz = 100
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	start := reading{
		at: t0,
		procs: map[string]procTime{
			report.ProcNATS: {10, 100}, report.ProcRedis: {11, 100},
			report.ServiceCommand: {20, 1000}, report.ServiceProjector: {21, 500}, report.ServiceQuery: {22, 50},
		},
		why:  map[string]string{},
		pgOK: true, pgChildren: map[int]int64{1: 0},
		loadgen: &procTime{30, 5}, self: 7,
		sys: procs.SystemCPU{User: 1000, System: 500, Idle: 9000, SoftIRQ: 10}, sysOK: true,
		pgStats: pgReading{xacts: 100, counted: true},
	}
	end := reading{
		at: t0.Add(10 * time.Second),
		procs: map[string]procTime{
			report.ProcNATS: {10, 150}, report.ProcRedis: {11, 120},
			report.ServiceCommand:   {25, 300}, // restarted in the window: all of it counts
			report.ServiceProjector: {21, 700},
		},
		why:  map[string]string{report.ServiceQuery: "not running"},
		pgOK: true, pgChildren: map[int]int64{1: 400},
		loadgen: &procTime{30, 105}, self: 17,
		sys: procs.SystemCPU{User: 1000 + 1200, System: 500 + 300, Idle: 9000, SoftIRQ: 40}, sysOK: true,
		pgStats:     pgReading{xacts: 2100, counted: true, statements: []report.Statement{{Query: "SELECT  1\n FROM x", Calls: 3000}, {Query: "COMMIT", Calls: 1000}}},
		redisOthers: 3,
	}
	u := usage(start, end, hz, report.WindowClosed, 1000, "command")
	want := map[string]float64{report.ProcPostgres: 4, report.ProcNATS: 0.5, report.ProcRedis: 0.2,
		report.ServiceCommand: 3, report.ServiceProjector: 2}
	for _, p := range u.Processes {
		if p.Process == report.ServiceQuery {
			if p.Measured || p.Why != "not running" {
				t.Errorf("query: %+v, want not measured: not running", p)
			}
			continue
		}
		if !p.Measured || !near(p.Seconds, want[p.Process]) {
			t.Errorf("%s: %+v, want %v s", p.Process, p, want[p.Process])
		}
		if p.Process == report.ProcRedis && p.OtherClients != 3 {
			t.Errorf("redis: %+v, want the other clients said", p)
		}
	}
	if !near(u.System(), 9.7) || !near(u.PerUnit(u.System()), 9700) || u.Complete() {
		t.Errorf("system %v s, %v µs per command, complete %v", u.System(), u.PerUnit(u.System()), u.Complete())
	}
	// 15 s busy − 9.7 system − 1 load generator − 0.1 benchmark.
	if u.LoadGen == nil || !near(*u.LoadGen, 1) || u.Outside == nil || !near(*u.Outside, 4.2) || !near(u.Interrupts, 0.3) {
		t.Errorf("load generator %v, outside %v, interrupts %v", u.LoadGen, u.Outside, u.Interrupts)
	}
	if u.Seconds != 10 || u.Units != 1000 || u.Unit != "command" || u.Kind != report.WindowClosed {
		t.Errorf("window %+v", u)
	}
	if pg := u.Postgres; pg == nil || pg.Transactions != 2000 || pg.Calls != 4000 || !pg.Counted ||
		len(pg.Statements) != 2 || pg.Statements[0].Query != "SELECT 1 FROM x" {
		t.Errorf("postgres %+v", u.Postgres)
	}

	t.Run("OKOutsideNeverNegative", func(t *testing.T) {
		e := end
		e.sys.User = start.sys.User // nothing busy: the readings disagree
		if u := usage(start, e, hz, report.WindowClosed, 1, "command"); u.Outside == nil || *u.Outside != 0 {
			t.Fatalf("outside %v", u.Outside)
		}
	})
	t.Run("OKNoLoadGenerator", func(t *testing.T) {
		s, e := start, end
		s.loadgen, e.loadgen = nil, nil
		if u := usage(s, e, hz, report.WindowDrain, 1, "event"); u.LoadGen != nil || u.Outside == nil || !near(*u.Outside, 5.2) {
			t.Fatalf("load generator %v, outside %v", u.LoadGen, *u.Outside)
		}
	})
}

func TestPGWork(t *testing.T) {
	var many []report.Statement
	for i := range 20 {
		many = append(many, report.Statement{Query: "q", Calls: int64(100 - i)})
	}
	for _, tc := range []struct {
		name       string
		start, end pgReading
		xacts      int64
		calls      int64
		top        int
		counted    bool
	}{
		{"OK", pgReading{xacts: 10, counted: true}, pgReading{xacts: 30, counted: true, statements: many}, 20, 1810, topStatements, true},
		{"OKNotCounted", pgReading{xacts: 10}, pgReading{xacts: 30}, 20, 0, 0, false},
		{"OKResetFailed", pgReading{xacts: 10}, pgReading{xacts: 30, counted: true, statements: many}, 20, 0, 0, false},
		{"ErrNoTransactions", pgReading{xacts: -1}, pgReading{xacts: 30}, -1, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := pgWork(tc.start, tc.end)
			if w.Transactions != tc.xacts || w.Calls != tc.calls || len(w.Statements) != tc.top || w.Counted != tc.counted {
				t.Fatalf("pgWork = %+v", w)
			}
		})
	}
}

func TestShortQuery(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                       "SELECT 1",
		"INSERT INTO events\n\t(a, b)\n": "INSERT INTO events (a, b)",
		"":                               "",
	} {
		if got := shortQuery(in); got != want {
			t.Errorf("shortQuery(%q) = %q, want %q", in, got, want)
		}
	}
	long := shortQuery("SELECT " + strings.Repeat("é", 300))
	if r := []rune(long); len(r) != 110 || r[len(r)-1] != '…' {
		t.Errorf("long query cut to %d runes: %q", len(r), long)
	}
}

func TestParseClientList(t *testing.T) {
	const list = "id=3 addr=127.0.0.1:50000 laddr=127.0.0.1:6379 fd=8 name= age=10 idle=0 flags=N db=0 cmd=get\n" +
		"id=4 addr=[::1]:50001 laddr=[::1]:6379 fd=9 name= age=10 idle=7 flags=N db=0 cmd=client|list\n" +
		"id=5 addr=/tmp/redis.sock:0 fd=10 idle=x\n\n"
	got := parseClientList(list)
	want := []clientLine{{50000, 0}, {50001, 7}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("parseClientList = %v, want %v", got, want)
	}
}
