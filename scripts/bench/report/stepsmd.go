package report

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// headline is the report's first answer: the sustainable rate and the CPU
// per command, beside the same before the speed work.
func headline(b *strings.Builder, r Results, before *Results) {
	fmt.Fprintf(b, "\n## Headline\n\n")
	fmt.Fprintf(b, "| | this run |")
	if before != nil {
		fmt.Fprintf(b, " before (%s) |", orUnknown(before.Settings.Code))
	}
	fmt.Fprintf(b, "\n| --- | ---: |")
	if before != nil {
		fmt.Fprintf(b, " ---: |")
	}
	b.WriteString("\n")
	fmt.Fprintf(b, "| **sustainable rate**: the highest open-loop command rate with every command answered on schedule (p99 ≤ %g ms, none failed or unsent) and visible with lag p99 ≤ %g ms | **%s** |",
		StepCommandP99Ms, StepLagP99Ms, sustainableText(r))
	if before != nil {
		fmt.Fprintf(b, " %s |", sustainableText(*before))
	}
	fmt.Fprintf(b, "\n| **CPU per command**, every process of the system summed (closed loop, most clients) | **%s** |", cpuText(r))
	if before != nil {
		fmt.Fprintf(b, " %s |", cpuText(*before))
	}
	b.WriteString("\n")
}

func sustainableText(r Results) string {
	if len(r.Steps) == 0 {
		return notMeasured
	}
	rate, ok := Sustainable(r.Steps)
	if !ok {
		return fmt.Sprintf("below %s commands/s", rateText(lowestRate(r.Steps)))
	}
	return rateText(rate) + " commands/s"
}

func lowestRate(steps []load.Result) float64 {
	low := steps[0].Rate
	for _, s := range steps {
		low = min(low, s.Rate)
	}
	return low
}

func cpuText(r Results) string {
	u, ok := CPUPerCommandRun(r)
	if !ok || u.Units == 0 {
		return notMeasured
	}
	return fmt.Sprintf("%.0f µs (%d clients)", u.PerUnit(u.System()), u.Clients)
}

func stepsSection(b *strings.Builder, r Results) {
	fmt.Fprintf(b, "\n## Sustainable rate: open-loop steps\n\n")
	if len(r.Steps) == 0 {
		fmt.Fprintf(b, "%s (see Notes).\n", notMeasured)
		return
	}
	fmt.Fprintf(b, "The `lag` scenario (the commands mix, each command read back at once with `?minVersion`) at rising fixed rates, each run timed from when each command was due. A step passes when the command p99 is ≤ %g ms, no command failed or went unsent, no read-back failed and the lag p99 is ≤ %g ms. A failed step runs once more (this machine is shared and noisy); the stepping stops at a step that fails twice, or once when it is clearly overloaded (its typical command or lag, the p50, over %g× the p99 limit, or requests left unsent: it fell behind its schedule). The %s/s, %s/s and %s/s steps always run, for the lag targets. **Sustainable rate: %s** — the highest rate that passed with every lower one passed too. An overloaded step's window holds less work than its commands (they finish after it), so its CPU per command reads low.\n\n",
		StepCommandP99Ms, StepLagP99Ms, OverloadFactor, rateText(r.Settings.IdleRate), rateText(r.Settings.LagRate/2), rateText(r.Settings.LagRate), sustainableText(r))
	fmt.Fprintf(b, "| rate /s | clients | command p50 ms | command p99 ms | lag p50 ms | lag p99 ms | failed | not sent | CPU µs per command | result |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	attempts := map[float64]int{}
	for _, s := range r.Steps {
		attempts[s.Rate]++
		label := rateText(s.Rate)
		if attempts[s.Rate] > 1 {
			label += " (again)"
		}
		cmd, lagS := s.Commands(), lag(s)
		cpu := "–"
		if u, ok := stepUsage(r.Usage, s.Rate, attempts[s.Rate]); ok && u.Units > 0 {
			cpu = fmt.Sprintf("%.0f", u.PerUnit(u.System()))
		}
		v := JudgeStep(s)
		res := "pass"
		switch {
		case v.Overloaded:
			res = "**overloaded**: " + v.Why
		case !v.Pass:
			res = "fail: " + v.Why
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %d | %d | %s | %s |\n", label, s.Clients,
			ms(cmd.Latency.P50), ms(cmd.Latency.P99), cond(lagS.OK > 0, ms(lagS.Latency.P50)), cond(lagS.OK > 0, ms(lagS.Latency.P99)),
			cmd.Failed+lagS.Failed, s.NotSent, cpu, res)
	}
}

// stepUsage is the window of one attempt of a step.
func stepUsage(us []Usage, rate float64, attempt int) (Usage, bool) {
	for _, u := range us {
		if u.Kind == WindowStep && u.Rate == rate && u.Attempt == attempt {
			return u, true
		}
	}
	return Usage{}, false
}

func stepsCPUSection(b *strings.Builder, r Results) {
	var cols []cpuCol
	for _, rate := range r.Settings.Rates {
		if u, ok := UsageOf(r.Usage, WindowStep, 0, rate); ok {
			cols = append(cols, cpuCol{rateText(rate) + "/s", u, true})
		}
	}
	if len(cols) == 0 {
		return
	}
	fmt.Fprintf(b, "\nCPU per command by step (the last attempt of each), read-backs included: each command here also costs a query.\n\n")
	cpuTable(b, cols)
	var us []Usage
	for _, c := range cols {
		us = append(us, c.u)
	}
	var notes strings.Builder
	whyNot(&notes, us...)
	if notes.Len() > 0 {
		fmt.Fprintf(b, "\n%s", notes.String())
	}
}

func beforeAfterSection(b *strings.Builder, r Results, before *Results) {
	fmt.Fprintf(b, "\n## Before and after\n\n")
	if before == nil {
		fmt.Fprintf(b, "No results of the code before the speed work were found (bench/before.json), so nothing to compare with.\n")
		return
	}
	fmt.Fprintf(b, "*Before* is %s, kept in `bench/before.json` (`scripts/bench/before.sh` measures it again); *now* is this run. CPU per command depends on how much batches at the load the system gets, and a busy machine gets less through: compare runs made on the same machine, equally quiet (see *other work* of each).\n\n", beforeLabel(before))
	if before.Settings.Note != "" {
		fmt.Fprintf(b, "Of the before run: %s\n\n", before.Settings.Note)
	}
	nowU, okNow := CPUPerCommandRun(r)
	befU, okBef := CPUPerCommandRun(*before)
	nowS, okNowS := UsageOf(r.Usage, WindowStep, 0, r.Settings.LagRate)
	befS, okBefS := UsageOf(before.Usage, WindowStep, 0, before.Settings.LagRate)
	fmt.Fprintf(b, "| µs per command | before, %d clients | now, %d clients | change | before, %s/s%s | now, %s/s%s | change |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
		befU.Clients, nowU.Clients, rateText(before.Settings.LagRate), overloadedMark(*before, before.Settings.LagRate),
		rateText(r.Settings.LagRate), overloadedMark(r, r.Settings.LagRate))
	cell := func(u Usage, ok bool, secs float64) (float64, string) {
		if !ok || u.Units == 0 {
			return 0, "–"
		}
		v := u.PerUnit(secs)
		return v, fmt.Sprintf("%.0f", v)
	}
	change := func(from, to float64) string {
		if from <= 0 || to <= 0 {
			return "–"
		}
		return fmt.Sprintf("%+.0f%%", 100*(to/from-1))
	}
	for _, proc := range append(append([]string{}, SystemProcesses...), "**total**") {
		secs := func(u Usage) float64 {
			if proc == "**total**" {
				return u.System()
			}
			p, _ := u.Process(proc)
			return p.Seconds
		}
		bv, bs := cell(befU, okBef, secs(befU))
		nv, ns := cell(nowU, okNow, secs(nowU))
		bsv, bss := cell(befS, okBefS, secs(befS))
		nsv, nss := cell(nowS, okNowS, secs(nowS))
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", proc, bs, ns, change(bv, nv), bss, nss, change(bsv, nsv))
	}
	fmt.Fprintf(b, "\n| | before | now |\n| --- | ---: | ---: |\n| sustainable rate | %s | %s |\n", sustainableText(*before), sustainableText(r))
	for _, rate := range []float64{r.Settings.IdleRate, r.Settings.LagRate / 2, r.Settings.LagRate} {
		bl, nl := lagText(*before, rate), lagText(r, rate)
		fmt.Fprintf(b, "| lag p50 / p99 at %s/s | %s | %s |\n", rateText(rate), bl, nl)
	}
	for _, rate := range []float64{r.Settings.LagRate} {
		fmt.Fprintf(b, "| command p50 / p99 at %s/s | %s | %s |\n", rateText(rate), cmdText(*before, rate), cmdText(r, rate))
	}
	best := func(r Results) string {
		if c, ok := BestOf(r.Commands, commands); ok {
			return fmt.Sprintf("%.0f (%d clients)", c.Throughput, c.Clients)
		}
		return "–"
	}
	fmt.Fprintf(b, "| commands/s, best closed loop | %s | %s |\n", best(*before), best(r))
}

// overloadedMark marks a step that fell behind its schedule: its window
// holds less work than its commands, so its CPU per command reads low.
func overloadedMark(r Results, rate float64) string {
	if s, ok := StepAt(r.Steps, rate); ok && JudgeStep(s).Overloaded {
		return " (overloaded: reads low)"
	}
	return ""
}

func lagText(r Results, rate float64) string {
	s, ok := StepAt(r.Steps, rate)
	if !ok || s.Lag == nil || s.Lag.OK == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s ms", ms(s.Lag.Latency.P50), ms(s.Lag.Latency.P99))
}

func cmdText(r Results, rate float64) string {
	s, ok := StepAt(r.Steps, rate)
	if !ok || s.Commands().OK == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s ms", ms(s.Commands().Latency.P50), ms(s.Commands().Latency.P99))
}

// lagTable is the lag and the commands at each of rates.
func lagTable(b *strings.Builder, r Results, rates []float64) {
	fmt.Fprintf(b, "| rate /s | lag p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | samples | command p50 ms | command p99 ms |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, rate := range rates {
		s, ok := StepAt(r.Steps, rate)
		if !ok || s.Lag == nil {
			fmt.Fprintf(b, "| %s | %s |\n", rateText(rate), notMeasured)
			continue
		}
		l, c := s.Lag.Latency, s.Commands().Latency
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %d | %s | %s |\n", rateText(rate),
			ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), s.Lag.OK, ms(c.P50), ms(c.P99))
	}
}

func rateText(rate float64) string { return strconv.FormatFloat(rate, 'f', -1, 64) }

func joinRates(rates []float64) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		parts[i] = rateText(r)
	}
	return strings.Join(parts, " ")
}
