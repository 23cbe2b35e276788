package chaos

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS is an embedded nats-server with JetStream that can be shut down and
// started again on the same port and store directory, as a restarted
// server would be.
type NATS struct {
	opts server.Options

	mu  sync.Mutex
	srv *server.Server
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
