package report

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// Text renders the verdict for a terminal: one line per target, its
// outcome first, and by how much a goal or floor was missed.
func Text(checks []Check) string {
	var b strings.Builder
	width := 0
	for _, c := range checks {
		width = max(width, len([]rune(c.Name)))
	}
	for _, c := range checks {
		fmt.Fprintf(&b, "%-12s  %-*s  %s  [goal %s, floor %s]", strings.ToUpper(string(c.Outcome)), width, c.Name, c.Measured, c.Goal, c.Floor)
		if c.Miss != "" {
			fmt.Fprintf(&b, "  %s", c.Miss)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// CPUText renders for a terminal the CPU per command of each closed-loop
// run (and before the speed work), the steps of the sustainable rate and
// the drain's CPU per event.
func CPUText(r Results, before *Results) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	var cols []Usage
	var heads []string
	for _, c := range r.Settings.Clients {
		if u, ok := UsageOf(r.Usage, WindowClosed, c, 0); ok {
			cols, heads = append(cols, u), append(heads, clientsText(c))
		}
	}
	if before != nil {
		if u, ok := CPUPerCommandRun(*before); ok {
			cols, heads = append(cols, u), append(heads, fmt.Sprintf("before: %d", u.Clients))
		}
	}
	if d, ok := UsageOf(r.Usage, WindowCatchUp, 0, 0); ok {
		cols, heads = append(cols, d), append(heads, "drain+catch-up, per event")
	}
	if len(cols) > 0 {
		fmt.Fprintf(&b, "CPU PER COMMAND, µs (every process of the system; closed loop)\n")
		fmt.Fprintf(tw, "\t%s\t\n", strings.Join(heads, "\t"))
		line := func(name string, v func(Usage) string) {
			fmt.Fprintf(tw, "%s\t", name)
			for _, u := range cols {
				fmt.Fprintf(tw, "%s\t", v(u))
			}
			fmt.Fprintln(tw)
		}
		for _, proc := range SystemProcesses {
			line(proc, func(u Usage) string {
				if p, ok := u.Process(proc); ok && p.Measured {
					return fmt.Sprintf("%.0f", u.PerUnit(p.Seconds))
				}
				return "-"
			})
		}
		line("total", func(u Usage) string { return fmt.Sprintf("%.0f", u.PerUnit(u.System())) })
		line("load generator", func(u Usage) string {
			if u.LoadGen == nil {
				return "-"
			}
			return fmt.Sprintf("%.0f", u.PerUnit(*u.LoadGen))
		})
		line("other work, CPUs", func(u Usage) string {
			if u.Outside == nil || u.Seconds == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", *u.Outside/u.Seconds)
		})
		_ = tw.Flush() // a strings.Builder does not fail
	}
	if len(r.Steps) > 0 {
		fmt.Fprintf(&b, "\nSUSTAINABLE RATE: %s\n", sustainableText(r))
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "rate/s\tcmd p50\tcmd p99\tlag p50\tlag p99\tfailed\tnot sent\tCPU µs/cmd\tresult\n")
		attempts := map[float64]int{}
		for _, s := range r.Steps {
			attempts[s.Rate]++
			cpu := "-"
			if u, ok := stepUsage(r.Usage, s.Rate, attempts[s.Rate]); ok {
				cpu = fmt.Sprintf("%.0f", u.PerUnit(u.System()))
			}
			l := lag(s)
			v := JudgeStep(s)
			res := "pass"
			switch {
			case v.Overloaded:
				res = "OVERLOADED: " + v.Why
			case !v.Pass:
				res = "fail: " + v.Why
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", rateText(s.Rate), ms(s.Commands().Latency.P50), ms(s.Commands().Latency.P99),
				ms(l.Latency.P50), ms(l.Latency.P99), s.Commands().Failed+l.Failed, s.NotSent, cpu, res)
		}
		_ = tw.Flush() // a strings.Builder does not fail
	}
	return b.String()
}
