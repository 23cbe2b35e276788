package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/scripts/bench/procs"
	"github.com/cart-cqrs/cart/scripts/bench/report"
)

// meter reads, at each end of a measured window, the CPU time of every
// process of the system, the load generator's and the benchmark's own, the
// machine's, and what PostgreSQL did for the benchmark's database; usage
// turns two readings into the window's report.Usage. It is not safe for
// concurrent use: one phase measures at a time.
type meter struct {
	hz   float64
	st   *stack // the services; a restarted one has a new pid
	nats *natsServer
	pg   *pgMeter
	// redisPid is the Redis server's process, 0 when not found (redisWhy).
	redisPid int
	redisWhy string
	rdb      *redis.Client
	// started is when the window being measured started.
	started time.Time
}

// procTime is a process's CPU ticks, with its reaped children's.
type procTime struct {
	pid   int
	ticks int64
}

// ticksOf is a process's own ticks and those of its reaped children.
type ticksOf struct{ own, reaped int64 }

// reading is everything the meter read at one moment.
type reading struct {
	at time.Time
	// procs is each of the system's processes but PostgreSQL; a missing
	// one could not be read, why[name] says why.
	procs map[string]procTime
	why   map[string]string
	// PostgreSQL: the postmaster's ticks (with its reaped children), each
	// live child's, and the kind of each (pgBackend, pgOther, pgShared).
	pgOK       bool
	pgWhy      string
	postmaster ticksOf
	pgChildren map[int]int64
	pgKind     map[int]string
	loadgen    *procTime
	self       int64
	sys        procs.SystemCPU
	sysOK      bool
	pgStats    pgReading
	// redisOthers is how many clients of the (shared) Redis server that
	// are not the system's were active since the window started, at its
	// end; -1 when not known.
	redisOthers int
}

func newMeter(ctx context.Context, st *stack, nats *natsServer, pg *pgMeter, rdb *redis.Client) *meter {
	m := &meter{hz: float64(procs.ClockTicks()), st: st, nats: nats, pg: pg, rdb: rdb}
	m.redisPid, m.redisWhy = redisProcess(ctx, rdb)
	return m
}

// redisProcess is the Redis server's pid from INFO server, when that
// process runs here.
func redisProcess(ctx context.Context, rdb *redis.Client) (int, string) {
	info, err := rdb.InfoMap(ctx, "server").Result()
	if err != nil {
		return 0, fmt.Sprintf("not measured: INFO server: %v", err)
	}
	var pid int
	if _, err := fmt.Sscan(info["Server"]["process_id"], &pid); err != nil || pid <= 0 {
		return 0, "not measured: INFO server gives no process_id"
	}
	s, err := procs.ReadStat(pid)
	if err != nil || !strings.HasPrefix(s.Comm, "redis") {
		return 0, fmt.Sprintf("not measured: Redis is process %d, which is not a Redis server on this machine (another host or container)", pid)
	}
	return pid, ""
}

// read takes a reading; loadgen is the load generator's pid, 0 if none.
// start resets pg_stat_statements first, so that the window counts from
// here.
func (m *meter) read(ctx context.Context, loadgen int, start bool) reading {
	r := reading{procs: map[string]procTime{}, why: map[string]string{}, redisOthers: -1}
	if start {
		r.pgStats = m.pg.read(ctx, true)
	}
	r.at = time.Now()
	if start {
		m.started = r.at
	}
	r.sys, r.sysOK = readSystem()
	if s, err := procs.ReadStat(os.Getpid()); err == nil {
		r.self = s.Ticks()
	}
	if loadgen > 0 {
		if s, err := procs.ReadStat(loadgen); err == nil {
			r.loadgen = &procTime{loadgen, s.Ticks()}
		}
	}
	pidOf := map[string]int{report.ProcNATS: m.nats.pid, report.ProcRedis: m.redisPid}
	m.unmeasured(r.why)
	for _, svc := range []string{report.ServiceCommand, report.ServiceProjector, report.ServiceQuery} {
		if p, ok := m.st.running[svc]; ok {
			pidOf[svc] = p.Pid()
		} else {
			r.why[svc] = "not running"
		}
	}
	for name, pid := range pidOf {
		if pid == 0 {
			continue
		}
		s, err := procs.ReadStat(pid)
		if err != nil {
			r.why[name] = "not measured: " + err.Error()
			continue
		}
		r.procs[name] = procTime{pid, s.Ticks()}
	}
	m.readPostgres(ctx, &r)
	if !start {
		r.pgStats = m.pg.read(ctx, false)
		r.redisOthers = m.redisOthers(ctx, r.at.Sub(m.started))
	}
	return r
}

// redisOthers counts the Redis clients active within the last d that are
// none of the system's processes nor the benchmark: on a shared server
// their work is in Redis's CPU time too. -1 when it cannot be told.
func (m *meter) redisOthers(ctx context.Context, d time.Duration) int {
	if m.redisPid == 0 {
		return -1
	}
	ours := map[int]bool{}
	pids := []int{os.Getpid()}
	for _, p := range m.st.running {
		pids = append(pids, p.Pid())
	}
	for _, pid := range pids {
		ports, err := procs.LocalPorts(pid)
		if err != nil {
			return -1
		}
		maps.Copy(ours, ports)
	}
	list, err := m.rdb.ClientList(ctx).Result()
	if err != nil {
		return -1
	}
	n := 0
	for _, c := range parseClientList(list) {
		if !ours[c.port] && time.Duration(c.idle)*time.Second <= d {
			n++
		}
	}
	return n
}

// clientLine is a line of CLIENT LIST: the client's port and the seconds
// since its last command.
type clientLine struct{ port, idle int }

// parseClientList reads CLIENT LIST ("id=3 addr=127.0.0.1:50000 … idle=0
// …" per line).
func parseClientList(s string) []clientLine {
	var out []clientLine
	for _, line := range strings.Split(s, "\n") {
		c, okAddr, okIdle := clientLine{}, false, false
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "addr":
				_, port, err := net.SplitHostPort(v)
				if err == nil {
					c.port, err = strconv.Atoi(port)
				}
				okAddr = err == nil
			case "idle":
				var err error
				c.idle, err = strconv.Atoi(v)
				okIdle = err == nil
			}
		}
		if okAddr && okIdle {
			out = append(out, c)
		}
	}
	return out
}

// unmeasured says why NATS or Redis, when not found, is not measured.
func (m *meter) unmeasured(why map[string]string) {
	if m.nats.pid == 0 {
		why[report.ProcNATS] = m.nats.why
	}
	if m.redisPid == 0 {
		why[report.ProcRedis] = m.redisWhy
	}
}

func readSystem() (procs.SystemCPU, bool) {
	s, err := procs.ReadSystemCPU()
	return s, err == nil
}

// readPostgres reads the postmaster and its children, and which of them
// serve other databases.
func (m *meter) readPostgres(ctx context.Context, r *reading) {
	if m.pg.postmaster == 0 {
		r.pgWhy = m.pg.why
		return
	}
	pm, err := procs.ReadStat(m.pg.postmaster)
	if err != nil {
		r.pgWhy = "not measured: postmaster: " + err.Error()
		return
	}
	kids, err := procs.Children(m.pg.postmaster)
	if err != nil {
		r.pgWhy = "not measured: " + err.Error()
		return
	}
	r.pgOK, r.pgChildren = true, map[int]int64{}
	r.postmaster = ticksOf{own: pm.UTime + pm.STime, reaped: pm.CUTime + pm.CSTime}
	for _, k := range kids {
		r.pgChildren[k.Pid] = k.Ticks()
	}
	r.pgKind = m.pg.kinds(ctx)
}

// usage is the window between two readings: each process's CPU seconds,
// the load generator's, the machine's other work, and PostgreSQL's work
// in the benchmark's database; units are the window's commands or events.
func usage(start, end reading, hz float64, kind string, units int64, unit string) report.Usage {
	u := report.Usage{Kind: kind, Seconds: end.at.Sub(start.at).Seconds(), Units: units, Unit: unit}
	secs := func(ticks int64) float64 { return float64(ticks) / hz }
	for _, name := range report.SystemProcesses {
		p := report.ProcessCPU{Process: name}
		switch {
		case name == report.ProcPostgres:
			p.Seconds, p.Parts, p.Measured, p.Why = postgresSeconds(start, end, hz)
		default:
			e, ok := end.procs[name]
			if !ok {
				p.Why = end.why[name]
				break
			}
			s := start.procs[name]
			if s.pid != e.pid {
				s.ticks = 0 // started within the window
			}
			p.Seconds, p.Measured = secs(e.ticks-s.ticks), true
			if name == report.ProcRedis && end.redisOthers > 0 {
				p.OtherClients = end.redisOthers
			}
		}
		u.Processes = append(u.Processes, p)
	}
	ours := u.System() + secs(end.self-start.self)
	if start.loadgen != nil && end.loadgen != nil && start.loadgen.pid == end.loadgen.pid {
		lg := secs(end.loadgen.ticks - start.loadgen.ticks)
		u.LoadGen = &lg
		ours += lg
	}
	if start.sysOK && end.sysOK {
		busy := secs(end.sys.Busy() - start.sys.Busy())
		outside := max(0, busy-ours)
		u.Outside = &outside
		u.Interrupts = secs(end.sys.Interrupts() - start.sys.Interrupts())
	}
	u.Postgres = pgWork(start.pgStats, end.pgStats)
	return u
}

// postgresSeconds is the CPU time of the postmaster and its children over
// the window, less the live backends of other databases, and its parts:
// the benchmark database's backends, the shared processes (the postmaster,
// WAL writer, checkpointer, …: on a shared server they work for the others
// too), and children that exited in the window. Those left their whole
// time in the postmaster's reaped-children ticks, so their ticks at the
// start are taken off. (A backend of another database that exited within
// the window cannot be told apart: its time counts, among the exited.)
func postgresSeconds(start, end reading, hz float64) (total float64, parts map[string]float64, ok bool, why string) {
	if !start.pgOK || !end.pgOK {
		why = end.pgWhy
		if why == "" {
			why = start.pgWhy
		}
		return 0, nil, false, why
	}
	kind := func(pid int) string {
		for _, k := range []string{end.pgKind[pid], start.pgKind[pid]} {
			if k != "" {
				return k
			}
		}
		return pgShared // not in pg_stat_activity: the logger, or one just started
	}
	const exited = "exited"
	ticks := map[string]int64{
		pgShared: end.postmaster.own - start.postmaster.own,
		exited:   end.postmaster.reaped - start.postmaster.reaped,
	}
	for pid, t := range end.pgChildren {
		ticks[kind(pid)] += t
	}
	for pid, t := range start.pgChildren {
		if _, alive := end.pgChildren[pid]; alive {
			ticks[kind(pid)] -= t
		} else {
			ticks[exited] -= t
		}
	}
	parts = map[string]float64{}
	for k, part := range map[string]string{pgBackend: report.PartPGBackends, pgShared: report.PartPGShared, exited: report.PartPGExited} {
		secs := float64(max(0, ticks[k])) / hz
		total += secs
		parts[part] = secs
	}
	return total, parts, true, ""
}

// outsideBefore is the CPUs' worth of work from outside the benchmark over
// d, before anything of it runs: all the machine's CPU time but the
// benchmark's own; -1 when /proc/stat cannot be read.
func outsideBefore(ctx context.Context, d time.Duration) float64 {
	hz := float64(procs.ClockTicks())
	self := func() int64 {
		s, err := procs.ReadStat(os.Getpid())
		if err != nil {
			return 0
		}
		return s.Ticks()
	}
	s0, ok0 := readSystem()
	t0, self0 := time.Now(), self()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return -1
	}
	s1, ok1 := readSystem()
	t1, self1 := time.Now(), self()
	if !ok0 || !ok1 {
		return -1
	}
	busy := float64(s1.Busy()-s0.Busy()-(self1-self0)) / hz
	return max(0, busy) / t1.Sub(t0).Seconds()
}
