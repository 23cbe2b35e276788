package procs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory is a process's resident set, in kilobytes.
type Memory struct {
	// RSSKB is the resident set now (VmRSS).
	RSSKB int64 `json:"rssKB"`
	// HWMKB is the peak resident set since the process started (VmHWM).
	HWMKB int64 `json:"hwmKB"`
}

// ReadMemory reads pid's resident set from /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("procs: memory of %d: %w", pid, err)
	}
	defer func() { _ = f.Close() }() // read-only
	m, err := parseStatus(f)
	if err != nil {
		return Memory{}, fmt.Errorf("procs: memory of %d: %w", pid, err)
	}
	return m, nil
}

// parseStatus reads VmRSS and VmHWM ("VmRSS:	   12345 kB") from a
// /proc/<pid>/status file.
func parseStatus(r io.Reader) (Memory, error) {
	var (
		m          Memory
		rss, hwm   bool
		sc         = bufio.NewScanner(r)
		fieldValue = func(line string) (int64, error) {
			fields := strings.Fields(line)
			if len(fields) != 3 || fields[2] != "kB" {
				return 0, fmt.Errorf("unexpected line %q", line)
			}
			return strconv.ParseInt(fields[1], 10, 64)
		}
	)
	for sc.Scan() {
		line := sc.Text()
		var err error
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			m.RSSKB, err = fieldValue(line)
			rss = true
		case strings.HasPrefix(line, "VmHWM:"):
			m.HWMKB, err = fieldValue(line)
			hwm = true
		}
		if err != nil {
			return Memory{}, err
		}
	}
	if err := sc.Err(); err != nil {
		return Memory{}, err
	}
	if !rss || !hwm {
		return Memory{}, fmt.Errorf("no VmRSS/VmHWM (a kernel thread, or the process exited)")
	}
	return m, nil
}

// Sampler follows a process's resident set while it runs: the largest
// VmRSS it saw and the last VmHWM.
type Sampler struct {
	pid      int
	interval time.Duration

	mu      sync.Mutex
	peak    Memory
	samples int
}

// NewSampler samples pid every interval once Run runs.
func NewSampler(pid int, interval time.Duration) *Sampler {
	return &Sampler{pid: pid, interval: interval}
}

// Run samples until ctx ends or the process is gone.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		m, err := ReadMemory(s.pid)
		if err != nil {
			return // the process exited: the last sample stands
		}
		s.mu.Lock()
		s.peak.RSSKB = max(s.peak.RSSKB, m.RSSKB)
		s.peak.HWMKB = max(s.peak.HWMKB, m.HWMKB)
		s.samples++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Peak returns the largest VmRSS sampled and the latest VmHWM.
func (s *Sampler) Peak() Memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
