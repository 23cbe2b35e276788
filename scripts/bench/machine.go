package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/scripts/bench/report"
)

// pgSettings are the server settings that decide write throughput.
var pgSettings = []string{"fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "shared_buffers", "max_connections"}

// machineFacts describes where the benchmark runs. What cannot be read is
// said so in the fact itself: the report is still worth having.
func machineFacts(ctx context.Context, dbURL string, rdb *redis.Client) report.Machine {
	m := report.Machine{
		NProc:      runtime.NumCPU(),
		CPU:        cpuModel(),
		Kernel:     readTrimmed("/proc/sys/kernel/osrelease"),
		GoVersion:  runtime.Version(),
		LoadBefore: loadAverage(),
		PGSettings: map[string]string{},
	}
	if conn, err := pgx.Connect(ctx, dbURL); err != nil {
		m.PGVersion = "unknown: " + err.Error()
	} else {
		if err := conn.QueryRow(ctx, "SELECT version()").Scan(&m.PGVersion); err != nil {
			m.PGVersion = "unknown: " + err.Error()
		}
		for _, name := range pgSettings {
			var v string
			if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err == nil {
				m.PGSettings[name] = v
			}
		}
		_ = conn.Close(ctx) // a read-only session; nothing to lose
	}
	m.RedisVer = "unknown"
	if info, err := rdb.InfoMap(ctx, "server").Result(); err == nil {
		if v, ok := info["Server"]["redis_version"]; ok {
			m.RedisVer = v
		}
	}
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer func() { _ = f.Close() }() // read-only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	fields := strings.Fields(readTrimmed("/proc/loadavg"))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], " ")
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	return strings.TrimSpace(string(b))
}
