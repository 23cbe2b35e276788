package procs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat is what /proc/<pid>/stat says of a process: its parent and its CPU
// time in clock ticks (ClockTicks per second).
type Stat struct {
	Pid, PPid int
	Comm      string
	// UTime and STime are the process's own ticks in user and kernel mode;
	// CUTime and CSTime those of its children that exited and were waited
	// for (a PostgreSQL backend that ended, a Redis save child).
	UTime, STime, CUTime, CSTime int64
}

// Ticks is the process's CPU time with that of its reaped children.
func (s Stat) Ticks() int64 { return s.UTime + s.STime + s.CUTime + s.CSTime }

// ParseStat reads one /proc/<pid>/stat line. The command name sits in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func ParseStat(line string) (Stat, error) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 1 || end < open {
		return Stat{}, fmt.Errorf("procs: stat %q: no (comm)", line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return Stat{}, fmt.Errorf("procs: stat %q: pid: %w", line, err)
	}
	// After the comm: state(3) ppid(4) … utime(14) stime(15) cutime(16)
	// cstime(17), numbered as in proc(5).
	f := strings.Fields(line[end+1:])
	const first = 3
	if len(f) < 17-first+1 {
		return Stat{}, fmt.Errorf("procs: stat %q: %d fields after the comm, want at least %d", line, len(f), 17-first+1)
	}
	field := func(n int) int64 {
		if err != nil {
			return 0
		}
		var v int64
		v, err = strconv.ParseInt(f[n-first], 10, 64)
		if err != nil {
			err = fmt.Errorf("procs: stat %q: field %d: %w", line, n, err)
		}
		return v
	}
	s := Stat{Pid: pid, Comm: line[open+1 : end], PPid: int(field(4)),
		UTime: field(14), STime: field(15), CUTime: field(16), CSTime: field(17)}
	if err != nil {
		return Stat{}, err
	}
	return s, nil
}

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, fmt.Errorf("procs: stat of %d: %w", pid, err)
	}
	return ParseStat(strings.TrimSpace(string(b)))
}

// Children lists the live children of ppid. A process that exits while
// the list is read is left out: its time shows in ppid's CUTime/CSTime
// once reaped.
func Children(ppid int) ([]Stat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("procs: children of %d: %w", ppid, err)
	}
	var out []Stat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		s, err := ReadStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		if s.PPid == ppid {
			out = append(out, s)
		}
	}
	return out, nil
}

// atClkTck is the auxiliary vector's entry for the clock tick rate.
const atClkTck = 17

// ClockTicks is the rate of the ticks in /proc (USER_HZ), read like
// sysconf(_SC_CLK_TCK) does from the auxiliary vector the kernel gives
// every process; 100, the value on every Linux architecture Go supports,
// when it cannot be read.
func ClockTicks() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if hz, ok := parseAuxv(b, atClkTck); ok && hz > 0 {
		return hz
	}
	return 100
}

// parseAuxv finds key in an auxiliary vector of native-endian 64-bit
// (key, value) pairs.
func parseAuxv(b []byte, key uint64) (int64, bool) {
	for ; len(b) >= 16; b = b[16:] {
		k, v := binary.NativeEndian.Uint64(b), binary.NativeEndian.Uint64(b[8:])
		switch k {
		case key:
			return int64(v), true
		case 0: // AT_NULL ends the vector
			return 0, false
		}
	}
	return 0, false
}

// SystemCPU is the machine's CPU time in ticks from the first line of
// /proc/stat, all CPUs together.
type SystemCPU struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal int64
}

// Busy is the time the CPUs ran processes (user and kernel mode) or were
// taken by the hypervisor (steal): what some process's utime and stime
// account for, plus what no process of this machine does. Interrupts are
// apart: the loopback traffic between the benchmark's own processes lands
// there.
func (c SystemCPU) Busy() int64 { return c.User + c.Nice + c.System + c.Steal }

// Interrupts is the time spent in hard and soft interrupts.
func (c SystemCPU) Interrupts() int64 { return c.IRQ + c.SoftIRQ }

// ParseSystemCPU reads the "cpu" line of /proc/stat.
func ParseSystemCPU(r io.Reader) (SystemCPU, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return SystemCPU{}, fmt.Errorf("procs: /proc/stat: cpu line %q: want at least 8 counters", sc.Text())
		}
		var (
			v    [8]int64
			errs []error
		)
		for i := range v {
			var err error
			v[i], err = strconv.ParseInt(f[i+1], 10, 64)
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			return SystemCPU{}, fmt.Errorf("procs: /proc/stat: cpu line %q: %w", sc.Text(), err)
		}
		return SystemCPU{User: v[0], Nice: v[1], System: v[2], Idle: v[3], IOWait: v[4], IRQ: v[5], SoftIRQ: v[6], Steal: v[7]}, nil
	}
	if err := sc.Err(); err != nil {
		return SystemCPU{}, fmt.Errorf("procs: /proc/stat: %w", err)
	}
	return SystemCPU{}, errors.New("procs: /proc/stat: no cpu line")
}

// ReadSystemCPU reads /proc/stat.
func ReadSystemCPU() (SystemCPU, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return SystemCPU{}, fmt.Errorf("procs: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only
	return ParseSystemCPU(f)
}

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// listeningInodes reads a /proc/net/tcp or tcp6 table and returns the
// inodes of the sockets listening on port.
func listeningInodes(r io.Reader, port int) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err == nil && int(p) == port {
			out = append(out, f[9])
		}
	}
	return out, sc.Err()
}

// ListeningPid finds the local process listening on TCP port, from the
// socket tables and the processes' open files (which only the process's
// owner or root may read). ok is false when it is not found.
func ListeningPid(port int) (pid int, ok bool) {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		found, _ := listeningInodes(f, port) // a partial table still may name it
		_ = f.Close()                        // read-only
		for _, ino := range found {
			inodes["socket:["+ino+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return 0, false
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", d.Name(), "fd"))
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join("/proc", d.Name(), "fd", fd.Name())); err == nil && inodes[link] {
				return pid, true
			}
		}
	}
	return 0, false
}

// socketPorts reads a /proc/<pid>/net/tcp or tcp6 table into the local
// port of each socket, by inode.
func socketPorts(r io.Reader) (map[string]int, error) {
	out := map[string]int{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[0] == "sl" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
			out[f[9]] = int(p)
		}
	}
	return out, sc.Err()
}

// LocalPorts lists the local TCP ports of pid's sockets (its connections'
// own ends), which only the process's owner or root may read.
func LocalPorts(pid int) (map[int]bool, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return nil, fmt.Errorf("procs: sockets of %d: %w", pid, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
		if ino, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	out := map[int]bool{}
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		f, err := os.Open(filepath.Join(dir, table))
		if err != nil {
			continue
		}
		ports, err := socketPorts(f)
		_ = f.Close() // read-only
		if err != nil {
			return nil, fmt.Errorf("procs: sockets of %d: %w", pid, err)
		}
		for ino, port := range ports {
			if inodes[ino] {
				out[port] = true
			}
		}
	}
	return out, nil
}
