package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is an embedded nats-server with JetStream that can be shut down and
// started again on the same port and store directory, as a restarted
// server would be, or with an older copy of its store, as a server that
// lost its page cache would be.
type NATS struct {
	opts server.Options

	mu       sync.Mutex
	srv      *server.Server
	starts   int
	returned time.Time
}

// StartNATS starts a server on a free loopback port storing JetStream data
// in storeDir.
func StartNATS(storeDir string) (*NATS, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("chaos: nats address: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("chaos: nats port: %w", err)
	}
	n := &NATS{opts: server.Options{
		Host: host, Port: port, JetStream: true, StoreDir: storeDir,
		NoSigs: true, NoLog: true,
	}}
	return n, n.Start()
}

// URL is the client URL; it does not change across restarts.
func (n *NATS) URL() string { return fmt.Sprintf("nats://%s:%d", n.opts.Host, n.opts.Port) }

// StoreDir is the directory of the server's JetStream data.
func (n *NATS) StoreDir() string { return n.opts.StoreDir }

// Returned is when the server last became ready again after a shutdown;
// zero while it has only started once.
func (n *NATS) Returned() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.returned
}

// Start starts the server (again). It must be shut down.
func (n *NATS) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return fmt.Errorf("chaos: nats is running")
	}
	opts := n.opts // the server keeps and changes the options it is given
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("chaos: nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("chaos: nats not ready after 20s")
	}
	n.srv = srv
	if n.starts++; n.starts > 1 {
		n.returned = time.Now()
	}
	return nil
}

// Shutdown stops the server and waits until it is down; its clients see
// their connections drop.
func (n *NATS) Shutdown() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// Snapshot copies the store directory into dst while the server runs, each
// file as it is at the moment it is read. That is the store a power cut
// leaves (JetStream acknowledges a message once it is in the page cache and
// syncs every two minutes) or a volume restored from a backup: older than
// what the server acknowledged, with the block being appended to possibly
// torn.
func (n *NATS) Snapshot(dst string) error {
	if err := copyTree(n.opts.StoreDir, dst); err != nil {
		return fmt.Errorf("chaos: nats snapshot: %w", err)
	}
	return nil
}

// Restore replaces the store directory with a copy of src (a Snapshot);
// the server must be down. src is left as it is.
func (n *NATS) Restore(src string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return errors.New("chaos: nats restore: the server is running")
	}
	entries, err := os.ReadDir(n.opts.StoreDir)
	if err != nil {
		return fmt.Errorf("chaos: nats restore: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(n.opts.StoreDir, e.Name())); err != nil {
			return fmt.Errorf("chaos: nats restore: %w", err)
		}
	}
	if err := copyTree(src, n.opts.StoreDir); err != nil {
		return fmt.Errorf("chaos: nats restore: %w", err)
	}
	return nil
}

// RecoveredStreamState returns the state of stream as a server recovers it
// from the store in dir: a server of its own, on another port and a copy of
// dir, so that no client publishes meanwhile and dir keeps its torn files
// for the real start.
func RecoveredStreamState(ctx context.Context, dir, stream string) (jetstream.StreamState, error) {
	tmp, err := os.MkdirTemp("", "chaos-nats-inspect-")
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("chaos: inspect nats store: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := copyTree(dir, tmp); err != nil {
		return jetstream.StreamState{}, fmt.Errorf("chaos: inspect nats store: %w", err)
	}
	n, err := StartNATS(tmp)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	defer n.Shutdown()
	nc, err := nats.Connect(n.URL(), nats.Name("chaos store inspection"))
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("chaos: inspect nats store: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("chaos: inspect nats store: %w", err)
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("chaos: inspect nats store: stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("chaos: inspect nats store: stream %s: %w", stream, err)
	}
	return info.State, nil
}

// copyTree copies the directories and regular files under src into dst. A
// file that the running server removes meanwhile is skipped, and one it
// appends to is copied as far as it is read.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, to)
		}
		return nil
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
