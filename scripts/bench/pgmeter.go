package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/scripts/bench/procs"
	"github.com/cart-cqrs/cart/scripts/bench/report"
)

// topStatements is how many statements a window keeps.
const topStatements = 12

// pgMeter reads PostgreSQL for the meter: its processes, which backends
// serve other databases, the benchmark database's transactions and, when
// pg_stat_statements is loaded, its statements. It never changes the
// server's configuration.
type pgMeter struct {
	db string // the benchmark's database
	// mon is connected to the server's "postgres" database (its reads are
	// not the benchmark database's work); bench to the benchmark's, when
	// statements are counted.
	mon, bench *pgx.Conn
	// postmaster is PostgreSQL's main process here, 0 when not found (why).
	postmaster int
	why        string
	// statements is "" when pg_stat_statements counts them, else why not.
	statements string
	// errs are failures met while measuring, for the report's notes.
	errs []error
}

// pgReading is what one reading found.
type pgReading struct {
	xacts      int64 // -1: not read
	statements []report.Statement
	counted    bool
}

// newPGMeter connects to the server of dbURL (whose database it must not
// be: the benchmark's own, freshly reset) and finds PostgreSQL's processes
// and whether pg_stat_statements is loaded; if it is, it creates the
// extension in the benchmark's database. What cannot be measured is said
// in the meter, not returned as an error.
func newPGMeter(ctx context.Context, serverURL, dbURL string) *pgMeter {
	m := &pgMeter{}
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		m.why, m.statements = "not measured: "+err.Error(), "PostgreSQL statements not counted: "+err.Error()
		return m
	}
	m.db = cfg.Database
	if m.mon, err = pgx.Connect(ctx, serverURL); err != nil {
		m.why, m.statements = "not measured: "+err.Error(), "PostgreSQL statements not counted: "+err.Error()
		return m
	}
	m.postmaster, m.why = postmasterOf(ctx, m.mon)
	m.statements = m.setUpStatements(ctx, dbURL)
	return m
}

// postmasterOf finds the postmaster as the parent of this connection's
// backend, when the server runs on this machine.
func postmasterOf(ctx context.Context, conn *pgx.Conn) (int, string) {
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, "not measured: " + err.Error()
	}
	s, err := procs.ReadStat(backend)
	if err != nil {
		return 0, fmt.Sprintf("not measured: the backend's process %d is not on this machine", backend)
	}
	pm, err := procs.ReadStat(s.PPid)
	if err != nil || !strings.HasPrefix(pm.Comm, "postgres") && !strings.HasPrefix(pm.Comm, "postmaster") {
		return 0, fmt.Sprintf("not measured: the parent %d of backend %d is not a postmaster", s.PPid, backend)
	}
	return s.PPid, ""
}

// setUpStatements creates pg_stat_statements in the benchmark's database
// when the server loads it; it returns why statements are not counted.
func (m *pgMeter) setUpStatements(ctx context.Context, dbURL string) string {
	var libs, track string
	if err := m.mon.QueryRow(ctx, "SELECT current_setting('shared_preload_libraries')").Scan(&libs); err != nil {
		return "PostgreSQL statements not counted: " + err.Error()
	}
	if !slices.Contains(strings.FieldsFunc(libs, func(r rune) bool { return r == ',' || r == ' ' }), "pg_stat_statements") {
		return fmt.Sprintf("**PostgreSQL statements are not counted**: pg_stat_statements is not loaded on this server (shared_preload_libraries = '%s'). "+
			"To count them, as a superuser run `ALTER SYSTEM SET shared_preload_libraries = '%s';` (keeping what the list already holds), "+
			"restart PostgreSQL, and run `make bench` again: it creates the extension in its own database. The benchmark does not change the server's configuration itself.",
			libs, strings.Trim(libs+",pg_stat_statements", ", "))
	}
	var err error
	if m.bench, err = pgx.Connect(ctx, dbURL); err != nil {
		return "PostgreSQL statements not counted: " + err.Error()
	}
	if _, err := m.bench.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return "PostgreSQL statements not counted: CREATE EXTENSION pg_stat_statements: " + err.Error()
	}
	if err := m.bench.QueryRow(ctx, "SELECT current_setting('pg_stat_statements.track')").Scan(&track); err == nil && track != "top" {
		m.errs = append(m.errs, fmt.Errorf("pg_stat_statements.track = %s: the statements counted include those run inside functions and triggers", track))
	}
	return ""
}

// The kinds of PostgreSQL process, by what pg_stat_activity says of them.
const (
	pgBackend = "backend" // a connection to the benchmark's database
	pgOther   = "other"   // a connection to another database
	pgShared  = "shared"  // no database: WAL writer, checkpointer, …
)

// kinds tells the live processes of PostgreSQL apart: the benchmark
// database's backends, other databases' (other people's work on a shared
// server, and the meter's own connection), and the shared processes.
func (m *pgMeter) kinds(ctx context.Context) map[int]string {
	out := map[int]string{}
	if m.mon == nil {
		return out
	}
	rows, err := m.mon.Query(ctx, "SELECT pid, coalesce(datname, '') FROM pg_stat_activity")
	if err != nil {
		m.note(fmt.Errorf("pg_stat_activity: %w", err))
		return out
	}
	var (
		pid int
		db  string
	)
	_, err = pgx.ForEachRow(rows, []any{&pid, &db}, func() error {
		switch db {
		case "":
			out[pid] = pgShared
		case m.db:
			out[pid] = pgBackend
		default:
			out[pid] = pgOther
		}
		return nil
	})
	if err != nil {
		m.note(fmt.Errorf("pg_stat_activity: %w", err))
	}
	return out
}

// read reads the benchmark database's transactions and, at a window's
// end, its statements; at a window's start it resets the statements.
func (m *pgMeter) read(ctx context.Context, start bool) pgReading {
	r := pgReading{xacts: -1}
	if m.mon == nil {
		return r
	}
	counted := m.bench != nil && m.statements == ""
	if counted && start {
		// This database's statements only: the server may be shared.
		if _, err := m.bench.Exec(ctx, "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)"); err != nil {
			m.note(fmt.Errorf("pg_stat_statements_reset: %w", err))
			counted = false
		}
	}
	if err := m.mon.QueryRow(ctx, "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", m.db).Scan(&r.xacts); err != nil {
		m.note(fmt.Errorf("pg_stat_database: %w", err))
		r.xacts = -1
	}
	if !counted || start {
		r.counted = counted
		return r
	}
	rows, err := m.bench.Query(ctx, `SELECT query, calls, total_exec_time FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat_statements%'
		ORDER BY calls DESC`)
	if err == nil {
		r.statements, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (report.Statement, error) {
			var s report.Statement
			err := row.Scan(&s.Query, &s.Calls, &s.ExecMs)
			return s, err
		})
	}
	if err != nil {
		m.note(fmt.Errorf("pg_stat_statements: %w", err))
		return r
	}
	r.counted = true
	return r
}

func (m *pgMeter) note(err error) {
	if len(m.errs) < 5 {
		m.errs = append(m.errs, err)
	}
}

// close closes the meter's connections.
func (m *pgMeter) close(ctx context.Context) error {
	var errs []error
	for _, c := range []*pgx.Conn{m.mon, m.bench} {
		if c != nil {
			errs = append(errs, c.Close(ctx))
		}
	}
	return errors.Join(errs...)
}

// pgWork is the benchmark database's work between two readings: the
// transactions, and the statements counted since the start's reset.
func pgWork(start, end pgReading) *report.PGWork {
	w := &report.PGWork{Transactions: -1}
	if start.xacts >= 0 && end.xacts >= 0 {
		w.Transactions = end.xacts - start.xacts
	}
	if start.counted && end.counted {
		w.Counted = true
		for i, s := range end.statements {
			w.Calls += s.Calls
			if i < topStatements {
				w.Statements = append(w.Statements, report.Statement{Query: shortQuery(s.Query), Calls: s.Calls, ExecMs: s.ExecMs})
			}
		}
	}
	return w
}

// shortQuery is a normalized statement on one line, cut to a readable
// length.
func shortQuery(q string) string {
	const maxLen = 110
	q = strings.Join(strings.Fields(q), " ")
	if r := []rune(q); len(r) > maxLen {
		q = string(r[:maxLen-1]) + "…"
	}
	return q
}
