// Package procs runs the processes a benchmark measures: it starts them with
// their own environment and log file, waits until they answer, reads their
// memory from /proc, and stops them gracefully.
package procs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Proc is a started child process.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

// Start starts path with args and env (the whole environment), its output
// appended to <logDir>/<name>.log. The process gets its own process group,
// so that a Ctrl-C of the benchmark reaches the benchmark only, which stops
// it in order.
func Start(name, path string, args, env []string, logDir string) (*Proc, error) {
	log, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("procs: %s: log: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("procs: start %s: %w", name, err), log.Close())
	}
	p := &Proc{Name: name, cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Stop sends SIGTERM and waits up to timeout for a graceful exit, then kills
// the process. It returns the exit error of a process that did not stop
// cleanly; a process that had already exited reports how it did.
func (p *Proc) Stop(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("procs: stop %s: %w", p.Name, err)
	}
	var err error
	select {
	case <-p.exited:
		err = p.err
	case <-time.After(timeout):
		err = fmt.Errorf("procs: %s did not stop within %v; killed", p.Name, timeout)
		if kerr := p.cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
			err = errors.Join(err, kerr)
		}
		<-p.exited
	}
	if cerr := p.log.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("procs: %s: %w", p.Name, err)
	}
	return nil
}

// WaitHTTP polls url until it answers 200, the process exits, or timeout
// passes.
func (p *Proc) WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("procs: %s: %w", p.Name, err)
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close() // only the status matters
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("procs: %s exited before it was ready: %v (see its log)", p.Name, p.err)
		case <-ctx.Done():
			return fmt.Errorf("procs: %s not ready at %s after %v", p.Name, url, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for a child process to listen on.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("procs: free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("procs: free port: %w", err)
	}
	return addr, nil
}
