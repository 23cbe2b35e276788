package procs

import (
	"os"
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	const status = `Name:	command
Umask:	0022
State:	S (sleeping)
VmPeak:	 1283412 kB
VmSize:	 1283412 kB
VmHWM:	   31544 kB
VmRSS:	   29876 kB
RssAnon:	   12100 kB
Threads:	9
`
	m, err := parseStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if m != (Memory{RSSKB: 29876, HWMKB: 31544}) {
		t.Fatalf("parseStatus = %+v, want VmRSS 29876 and VmHWM 31544", m)
	}

	for name, bad := range map[string]string{
		"ErrKernelThread": "Name:	kthreadd\nState:	S (sleeping)\n",
		"ErrUnit":         "VmHWM:	1 MB\nVmRSS:	1 kB\n",
		"ErrNumber":       "VmHWM:	x kB\nVmRSS:	1 kB\n",
	} {
		t.Run(name, func(t *testing.T) {
			if m, err := parseStatus(strings.NewReader(bad)); err == nil {
				t.Fatalf("parseStatus = %+v, want an error", m)
			}
		})
	}
}

func TestReadMemoryOfThisProcess(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSSKB <= 0 || m.HWMKB < m.RSSKB {
		t.Fatalf("memory of the test process = %+v: want a resident set and a peak at least as large", m)
	}
}
