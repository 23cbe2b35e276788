package report

import (
	"fmt"
	"strings"
)

// cpuCol is one column of a CPU table: a window and its heading.
type cpuCol struct {
	head string
	u    Usage
	ok   bool
}

// cpuTable renders µs of CPU per unit for each process of the system (rows)
// in each window (columns), their total, and apart from it the load
// generator and the machine's other work.
func cpuTable(b *strings.Builder, cols []cpuCol) {
	fmt.Fprintf(b, "| µs per %s |", cols[0].u.Unit)
	for _, c := range cols {
		fmt.Fprintf(b, " %s |", c.head)
	}
	fmt.Fprintf(b, "\n| --- |%s\n", strings.Repeat(" ---: |", len(cols)))
	row := func(name string, cell func(Usage) string) {
		fmt.Fprintf(b, "| %s |", name)
		for _, c := range cols {
			v := "–"
			if c.ok {
				v = cell(c.u)
			}
			fmt.Fprintf(b, " %s |", v)
		}
		b.WriteString("\n")
	}
	parts := []struct{ key, name string }{
		{PartPGBackends, "… of it, its backends of the benchmark's database"},
		{PartPGShared, "… of it, shared processes: WAL writer, checkpointer, …"},
		{PartPGExited, "… of it, children that exited in the window"},
	}
	for _, proc := range SystemProcesses {
		row(proc, func(u Usage) string {
			p, ok := u.Process(proc)
			switch {
			case !ok:
				return "–"
			case !p.Measured:
				return notMeasured
			}
			return fmt.Sprintf("%.0f", u.PerUnit(p.Seconds))
		})
		if proc != ProcPostgres {
			continue
		}
		for _, part := range parts {
			if !hasPart(cols, part.key) {
				continue
			}
			row(part.name, func(u Usage) string {
				p, _ := u.Process(ProcPostgres)
				if v, ok := p.Parts[part.key]; ok {
					return fmt.Sprintf("%.0f", u.PerUnit(v))
				}
				return "–"
			})
		}
	}
	row("**total**", func(u Usage) string {
		s := fmt.Sprintf("**%.0f**", u.PerUnit(u.System()))
		if !u.Complete() {
			s += " (incomplete)"
		}
		return s
	})
	row("load generator (not in the total)", func(u Usage) string {
		if u.LoadGen == nil {
			return "–"
		}
		return fmt.Sprintf("%.0f", u.PerUnit(*u.LoadGen))
	})
	row("other work on the machine (CPUs)", func(u Usage) string {
		if u.Outside == nil || u.Seconds <= 0 {
			return notMeasured
		}
		return fmt.Sprintf("%.2f", *u.Outside/u.Seconds)
	})
	row(cols[0].u.Unit+"s in the window", func(u Usage) string {
		return fmt.Sprintf("%d in %.1f s", u.Units, u.Seconds)
	})
}

// hasPart reports whether a column's PostgreSQL time has the part, and
// it is worth a row (the exited children's only when there are some).
func hasPart(cols []cpuCol, key string) bool {
	for _, c := range cols {
		p, _ := c.u.Process(ProcPostgres)
		if v, ok := p.Parts[key]; c.ok && ok && (key != PartPGExited || c.u.PerUnit(v) >= 1) {
			return true
		}
	}
	return false
}

// whyNot says, under a CPU table, what its windows could not measure or
// counted beyond the system, once per process.
func whyNot(b *strings.Builder, us ...Usage) {
	seen := map[string]bool{}
	others := map[string]int{}
	var order []string
	for _, u := range us {
		for _, p := range u.Processes {
			if p.Why != "" && !seen[p.Process+p.Why] {
				seen[p.Process+p.Why] = true
				fmt.Fprintf(b, "* %s: %s\n", p.Process, p.Why)
			}
			if p.OtherClients > 0 {
				if _, ok := others[p.Process]; !ok {
					order = append(order, p.Process)
				}
				others[p.Process] = max(others[p.Process], p.OtherClients)
			}
		}
	}
	for _, proc := range order {
		fmt.Fprintf(b, "* %s: the server is shared, and up to %d clients that are not the system's were active in a window: their work is counted too.\n", proc, others[proc])
	}
}

func cpuSection(b *strings.Builder, r Results, before *Results) {
	fmt.Fprintf(b, "\n## CPU per command\n\n")
	fmt.Fprintf(b, "The CPU time (user + system, from `/proc/<pid>/stat`) of every process of the system over each run's measured window, divided by the commands of the window: PostgreSQL is the postmaster and all its children (backends, WAL writer, checkpointer, …, and those that exited in the window), less the backends of other databases; NATS, Redis and the three services are one process each. The load generator is listed apart and not in the total. Closed loop, the `commands` scenario (no reads).\n\n")
	var cols []cpuCol
	var windows []Usage
	for _, c := range r.Settings.Clients {
		u, ok := UsageOf(r.Usage, WindowClosed, c, 0)
		cols = append(cols, cpuCol{clientsText(c), u, ok})
		windows = append(windows, u)
	}
	if before != nil {
		if u, ok := CPUPerCommandRun(*before); ok {
			cols = append(cols, cpuCol{"before: " + clientsText(u.Clients), u, ok})
		}
	}
	if !anyOK(cols) {
		fmt.Fprintf(b, "%s (see Notes).\n", notMeasured)
		return
	}
	cols = unitOf(cols, "command")
	cpuTable(b, cols)
	if before != nil {
		fmt.Fprintf(b, "\n*Before* is %s (see [Before and after](#before-and-after)).\n", beforeLabel(before))
	}
	fmt.Fprintf(b, "\nThe command service is profiled during these runs (Go's CPU profiler samples at 100 Hz, about 1%% of its CPU).\n")
	var notes strings.Builder
	whyNot(&notes, windows...)
	if notes.Len() > 0 {
		fmt.Fprintf(b, "\n%s", notes.String())
	}
	idleTable(b, r, before)
}

// idleTable is the CPU the system uses doing nothing: its timers and
// polling loops, which every command at a low rate pays for.
func idleTable(b *strings.Builder, r Results, before *Results) {
	u, ok := UsageOf(r.Usage, WindowIdle, 0, 0)
	if !ok || u.Seconds <= 0 {
		return
	}
	bu, bok := Usage{}, false
	if before != nil {
		bu, bok = UsageOf(before.Usage, WindowIdle, 0, 0)
		bok = bok && bu.Seconds > 0
	}
	fmt.Fprintf(b, "\nWith no load at all, over %.1f s after the start (timers, polling loops, keep-alives: what every command pays at a low rate), in %% of one CPU:\n\n| process | idle |", u.Seconds)
	if bok {
		fmt.Fprintf(b, " before |")
	}
	fmt.Fprintf(b, "\n| --- | ---: |")
	if bok {
		fmt.Fprintf(b, " ---: |")
	}
	b.WriteString("\n")
	cell := func(u Usage, proc string) string {
		if proc == "**total**" {
			return fmt.Sprintf("**%.1f%%**", 100*u.System()/u.Seconds)
		}
		p, ok := u.Process(proc)
		if !ok || !p.Measured {
			return notMeasured
		}
		return fmt.Sprintf("%.1f%%", 100*p.Seconds/u.Seconds)
	}
	for _, proc := range append(append([]string{}, SystemProcesses...), "**total**") {
		fmt.Fprintf(b, "| %s | %s |", proc, cell(u, proc))
		if bok {
			fmt.Fprintf(b, " %s |", cell(bu, proc))
		}
		b.WriteString("\n")
	}
}

func anyOK(cols []cpuCol) bool {
	for _, c := range cols {
		if c.ok {
			return true
		}
	}
	return false
}

// unitOf names the unit of columns that have no window.
func unitOf(cols []cpuCol, unit string) []cpuCol {
	for i := range cols {
		if cols[i].u.Unit == "" {
			cols[i].u.Unit = unit
		}
	}
	return cols
}

func beforeLabel(before *Results) string {
	s := fmt.Sprintf("the same benchmark run on %s against %s (%s measured per run, clients %s",
		before.Date.UTC().Format("2006-01-02"), orUnknown(before.Settings.Code), before.Settings.Duration, joinInts(before.Settings.Clients))
	if during, _, ok := OutsideLoad(*before); ok {
		s += fmt.Sprintf(", %.2f CPUs of other work on the machine while measuring", during)
	}
	return s + ")"
}

func postgresSection(b *strings.Builder, r Results, before *Results) {
	fmt.Fprintf(b, "\n## PostgreSQL work per command\n\n")
	type col struct {
		head string
		u    Usage
	}
	var cols []col
	for _, c := range r.Settings.Clients {
		if u, ok := UsageOf(r.Usage, WindowClosed, c, 0); ok && u.Postgres != nil {
			cols = append(cols, col{clientsText(c), u})
		}
	}
	if u, ok := UsageOf(r.Usage, WindowStep, 0, r.Settings.LagRate); ok && u.Postgres != nil {
		cols = append(cols, col{fmt.Sprintf("%.0f/s, read back", r.Settings.LagRate), u})
	}
	if before != nil {
		if u, ok := CPUPerCommandRun(*before); ok && u.Postgres != nil {
			cols = append(cols, col{"before: " + clientsText(u.Clients), u})
		}
	}
	if len(cols) == 0 {
		fmt.Fprintf(b, "%s (see Notes).\n", notMeasured)
		return
	}
	fmt.Fprintf(b, "Transactions from `pg_stat_database` (xact_commit + xact_rollback of the benchmark's database; backends report them at most once a second, so a window's ends are that coarse); statements from `pg_stat_statements` (reset at the start of each window; top-level statements only, unless the server sets `pg_stat_statements.track = all`).\n\n| per command |")
	for _, c := range cols {
		fmt.Fprintf(b, " %s |", c.head)
	}
	fmt.Fprintf(b, "\n| --- |%s\n| transactions |", strings.Repeat(" ---: |", len(cols)))
	for _, c := range cols {
		fmt.Fprintf(b, " %s |", perUnit(c.u, c.u.Postgres.Transactions))
	}
	fmt.Fprintf(b, "\n| statements |")
	for _, c := range cols {
		v := "not counted"
		if c.u.Postgres.Counted {
			v = perUnit(c.u, c.u.Postgres.Calls)
		}
		fmt.Fprintf(b, " %s |", v)
	}
	b.WriteString("\n")
	if r.Machine.PGStatStatements != "" {
		fmt.Fprintf(b, "\n%s\n", r.Machine.PGStatStatements)
	}
	if u, ok := CPUPerCommandRun(r); ok && u.Postgres != nil && u.Postgres.Counted {
		statementsTable(b, clientsText(u.Clients)+", closed loop", u)
	}
	if u, ok := UsageOf(r.Usage, WindowStep, 0, r.Settings.LagRate); ok && u.Postgres != nil && u.Postgres.Counted {
		statementsTable(b, fmt.Sprintf("%.0f/s, open loop, each command read back", r.Settings.LagRate), u)
	}
}

func perUnit(u Usage, n int64) string {
	if n < 0 || u.Units <= 0 {
		return notMeasured
	}
	return fmt.Sprintf("%.2f", float64(n)/float64(u.Units))
}

func statementsTable(b *strings.Builder, title string, u Usage) {
	n := float64(max(1, u.Units))
	fmt.Fprintf(b, "\nThe most called statements, %s (%d commands, %.2f statements per command), with the time PostgreSQL spent executing them (wall clock inside the server: lock waits included, the commit's WAL flush not):\n\n| calls per command | µs per command | statement |\n| ---: | ---: | --- |\n",
		title, u.Units, float64(u.Postgres.Calls)/n)
	for _, s := range u.Postgres.Statements {
		fmt.Fprintf(b, "| %.2f | %.0f | `%s` |\n", float64(s.Calls)/n, 1000*s.ExecMs/n, strings.ReplaceAll(s.Query, "|", `\|`))
	}
}

func clientsText(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}
