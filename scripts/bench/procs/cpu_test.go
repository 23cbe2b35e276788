package procs

import (
	"encoding/binary"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want Stat
	}{
		{
			name: "OKPostmaster",
			line: "2206 (postgres) S 1 2206 2206 0 -1 4194304 3982 14094 0 13 1 4 5 17 20 0 1 0 3688 222543872 7648 18446744073709551615",
			want: Stat{Pid: 2206, PPid: 1, Comm: "postgres", UTime: 1, STime: 4, CUTime: 5, CSTime: 17},
		},
		{
			name: "OKCommWithSpacesAndParens",
			line: "4242 (a (b) c) R 77 4242 4242 0 -1 0 0 0 0 0 1200 300 0 0 20 0 9 0 100 0 0",
			want: Stat{Pid: 4242, PPid: 77, Comm: "a (b) c", UTime: 1200, STime: 300},
		},
		{
			name: "OKNewlineTrimmedByTheCaller",
			line: "7 (redis-server) S 1 7 7 0 -1 0 0 0 0 0 9 8 7 6",
			want: Stat{Pid: 7, PPid: 1, Comm: "redis-server", UTime: 9, STime: 8, CUTime: 7, CSTime: 6},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat(tc.line)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("ParseStat = %+v, want %+v", got, tc.want)
			}
		})
	}
	for name, bad := range map[string]string{
		"ErrNoComm":      "12 S 1 2 3",
		"ErrShort":       "12 (x) S 1 2 3 4 5",
		"ErrPid":         "x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14",
		"ErrNotANumber":  "12 (x) S 1 2 3 4 5 6 7 8 9 10 eleven 12 13 14",
		"ErrEmpty":       "",
		"ErrParenBefore": ") 12 (x S",
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := ParseStat(bad); err == nil {
				t.Fatalf("ParseStat(%q) = %+v, want an error", bad, s)
			}
		})
	}
}

func TestReadStatOfThisProcess(t *testing.T) {
	s, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.Pid != os.Getpid() || s.PPid != os.Getppid() {
		t.Fatalf("stat of the test process = %+v: want pid %d, parent %d", s, os.Getpid(), os.Getppid())
	}
	kids, err := Children(os.Getppid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(kids, func(k Stat) bool { return k.Pid == os.Getpid() }) {
		t.Fatalf("children of %d = %+v: this process is missing", os.Getppid(), kids)
	}
}

func TestParseAuxv(t *testing.T) {
	vec := func(pairs ...uint64) []byte {
		var b []byte
		for _, v := range pairs {
			b = binary.NativeEndian.AppendUint64(b, v)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		auxv []byte
		hz   int64
		ok   bool
	}{
		{"OK", vec(6, 4096, 17, 100, 0, 0), 100, true},
		{"OKFirst", vec(17, 250, 0, 0), 250, true},
		{"ErrEndsBefore", vec(6, 4096, 0, 0, 17, 100), 0, false},
		{"ErrMissing", vec(6, 4096), 0, false},
		{"ErrTruncated", vec(6, 4096, 17)[:20], 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hz, ok := parseAuxv(tc.auxv, atClkTck)
			if hz != tc.hz || ok != tc.ok {
				t.Fatalf("parseAuxv = %d, %v; want %d, %v", hz, ok, tc.hz, tc.ok)
			}
		})
	}
	if hz := ClockTicks(); hz <= 0 {
		t.Fatalf("ClockTicks() = %d", hz)
	}
}

func TestParseSystemCPU(t *testing.T) {
	const stat = "cpu  48078 5 10690 220387 607 11 432 303 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2 3\n"
	c, err := ParseSystemCPU(strings.NewReader(stat))
	if err != nil {
		t.Fatal(err)
	}
	want := SystemCPU{User: 48078, Nice: 5, System: 10690, Idle: 220387, IOWait: 607, IRQ: 11, SoftIRQ: 432, Steal: 303}
	if c != want {
		t.Fatalf("ParseSystemCPU = %+v, want %+v", c, want)
	}
	if c.Busy() != 48078+5+10690+303 || c.Interrupts() != 443 {
		t.Fatalf("busy %d, interrupts %d", c.Busy(), c.Interrupts())
	}
	for name, bad := range map[string]string{
		"ErrNoCPULine": "cpu0 1 2 3 4 5 6 7 8\n",
		"ErrShort":     "cpu 1 2 3\n",
		"ErrNumber":    "cpu 1 2 x 4 5 6 7 8\n",
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := ParseSystemCPU(strings.NewReader(bad)); err == nil {
				t.Fatalf("ParseSystemCPU = %+v, want an error", c)
			}
		})
	}
}

func TestListeningInodes(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:107E 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 23456 1 0000000000000000 100 0 0 10 0
   1: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 23999 1 0000000000000000 100 0 0 10 0
   2: 0100007F:C350 0100007F:107E 01 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:107E 0100007F:C350 01 00000000:00000000 00:00000000 00000000   105        0 31338 1 0000000000000000 20 4 30 10 -1
`
	got, err := listeningInodes(strings.NewReader(table), 4222) // 0x107E
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"23456"}) {
		t.Fatalf("listening on 4222: %v, want [23456] (the connected sockets are not listening)", got)
	}
	if got, _ := listeningInodes(strings.NewReader(table), 6379); !slices.Equal(got, []string{"23999"}) {
		t.Fatalf("listening on 6379: %v, want [23999]", got)
	}
	if got, _ := listeningInodes(strings.NewReader(table), 50000); len(got) != 0 { // 0xC350: connected only
		t.Fatalf("listening on 50000: %v, want none", got)
	}
}

func TestSocketPorts(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 23999 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:18EB 01 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 20 4 30 10 -1
`
	got, err := socketPorts(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["23999"] != 6379 || got["31337"] != 50000 {
		t.Fatalf("socketPorts = %v", got)
	}
}

func TestLocalPortsOfThisProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	ports, err := LocalPorts(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if port := ln.Addr().(*net.TCPAddr).Port; !ports[port] {
		t.Fatalf("local ports %v lack the listener's %d", ports, port)
	}
}
