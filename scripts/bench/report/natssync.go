package report

import (
	"fmt"
	"strings"

	"github.com/cart-cqrs/cart/scripts/loadgen/load"
)

// The nats-server sync settings the benchmark names specially; any other is
// a sync_interval duration.
const (
	// SyncDefault leaves sync_interval unset: the file store fsyncs every
	// 2 minutes (nats-server's default), and a PubAck means the message is
	// in the operating system's page cache.
	SyncDefault = "default"
	// SyncAlways fsyncs every write before its PubAck.
	SyncAlways = "always"
)

// SyncRun is the stream and the system on a nats-server with one sync
// setting: a fresh server, database and services each.
type SyncRun struct {
	// Sync is the server's sync_interval: SyncDefault, SyncAlways or a
	// duration.
	Sync string `json:"sync"`
	// Publish is one publisher publishing synchronously to the server
	// alone, before the services start.
	Publish *SyncPublish `json:"publish,omitempty"`
	// Commands is the commands scenario, closed loop at the most clients,
	// and Usage the CPU time of its measured window.
	Commands *load.Result `json:"commands,omitempty"`
	Usage    *Usage       `json:"usage,omitempty"`
	// Behind is how many of the run's events were not in the stream yet
	// when the load generator stopped; CaughtUpSeconds is how long after
	// that the stream had every event, when CaughtUp.
	Behind          int64   `json:"behind"`
	CaughtUp        bool    `json:"caughtUp"`
	CaughtUpSeconds float64 `json:"caughtUpSeconds"`
}

// SyncPublish is a run of publishes, each waiting for its PubAck before the
// next is sent.
type SyncPublish struct {
	Messages int64   `json:"messages"`
	Bytes    int     `json:"bytes"` // per message
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"perSec"`
	// Publish to PubAck, in milliseconds.
	P50Ms float64 `json:"p50Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

// syncName is how the report calls a sync setting.
func syncName(sync string) string {
	switch sync {
	case SyncDefault:
		return "default (2m)"
	case SyncAlways:
		return "`always`"
	}
	return "`" + sync + "`"
}

func natsSyncSection(b *strings.Builder, r Results) {
	fmt.Fprintf(b, "\n## Stream durability: NATS sync\n\n")
	if len(r.NATSSync) == 0 {
		fmt.Fprintf(b, "%s (see Notes).\n", notMeasured)
		return
	}
	clients, pub := 0, SyncPublish{}
	for _, s := range r.NATSSync {
		if s.Commands != nil {
			clients = s.Commands.Clients
		}
		if s.Publish != nil {
			pub = *s.Publish
		}
	}
	fmt.Fprintf(b, "JetStream sends the PubAck the relay waits for, before it lets an outbox row go, once the message is written to the server's file store, which fsyncs its files every `sync_interval` (2 minutes unless set); `sync_interval: always` fsyncs every write before its PubAck. For each setting a fresh nats-server first ran alone: one publisher, each publish waiting for its PubAck before the next (%d-byte messages with a `Nats-Msg-Id`, to a file stream of their own, one replica) for %.0f s. Then, over a fresh database and the three services on that server, the `commands` scenario ran closed loop at %s, as in the writes above. The last column is how many of the run's events the relay had not yet published when the load stopped (the event store's count less the stream's), and how soon it had; CPU per command counts the measured window only, so a relay that fell behind did part of its work after it. Every part shares this machine's CPUs: a relay held back by the disk leaves them to the command path, so its cost shows as events not yet in the stream, and read models behind by as much, rather than as fewer commands/s.\n\n",
		pub.Bytes, pub.Seconds, clientsText(clients))
	fmt.Fprintf(b, "| `sync_interval` | sync publishes/s | publish p50 / p99 ms | commands/s | command p50 ms | command p99 ms | failed | CPU µs per command | of it NATS | events not in the stream when the load stopped |\n")
	fmt.Fprintf(b, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	var windows []Usage
	for _, s := range r.NATSSync {
		pubRate, pubLat := "–", "–"
		if p := s.Publish; p != nil {
			pubRate, pubLat = num(p.PerSec), ms(p.P50Ms)+" / "+ms(p.P99Ms)
		}
		var cmd load.Stats
		if s.Commands != nil {
			cmd = s.Commands.Commands()
		}
		ok := s.Commands != nil
		cpu, natsCPU := "–", "–"
		if u := s.Usage; u != nil {
			windows = append(windows, *u)
			cpu = fmt.Sprintf("%.0f", u.PerUnit(u.System()))
			if !u.Complete() {
				cpu += " (incomplete)"
			}
			if p, found := u.Process(ProcNATS); found && p.Measured {
				natsCPU = fmt.Sprintf("%.0f", u.PerUnit(p.Seconds))
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", syncName(s.Sync), pubRate, pubLat,
			cond(ok, num(cmd.Throughput)), cond(ok, ms(cmd.Latency.P50)), cond(ok, ms(cmd.Latency.P99)), cond(ok, fmt.Sprint(cmd.Failed)),
			cpu, natsCPU, cond(ok, behindText(s)))
	}
	var notes strings.Builder
	whyNot(&notes, windows...)
	if notes.Len() > 0 {
		fmt.Fprintf(b, "\n%s", notes.String())
	}
	fmt.Fprintf(b, "\nWhat the product does in each case:\n\n")
	fmt.Fprintf(b, "* **default**: the write reached the operating system before the PubAck, so the NATS process dying loses nothing; a crash of the machine (power loss, kernel panic) can forget up to `sync_interval` of acknowledged messages, and a volume restored from an older copy everything since. The relay notices that the stream is behind what it published, or gone, and publishes the missing events again from PostgreSQL, which committed them first: the outbox rows it keeps for `RELAY_RETENTION` (by default the stream's duplicate window, 5 minutes), or the whole history when the stream is gone (`RELAY_REPUBLISH_HORIZON`). The projector applies them like any others.\n")
	fmt.Fprintf(b, "* **`always`**: the server keeps everything it acknowledged through a crash of the machine, at the cost measured above: every publish waits for a disk flush, and the relay's rate with it.\n")
	fmt.Fprintf(b, "* **R3** (a cluster of three and `NATS_STREAM_REPLICAS=3`, as `deploy/k8s` runs it; not measured here): a PubAck means two of the three servers stored the message, so losing any one server, its disk included, loses nothing; only machines of the quorum crashing together could still forget what they had not synced. The cost is a cluster, and a round trip between servers inside every publish.\n")
}

// behindText says how far the stream was behind the event store when the
// load stopped, and how long it took to catch up.
func behindText(s SyncRun) string {
	switch {
	case s.Behind == 0:
		return "none"
	case s.CaughtUp:
		return fmt.Sprintf("%d, in the stream %.1f s later", s.Behind, s.CaughtUpSeconds)
	}
	return fmt.Sprintf("%d, still not all in the stream %.0f s later", s.Behind, s.CaughtUpSeconds)
}
