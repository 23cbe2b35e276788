package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one service binary the chaos run starts, kills, pauses and
// restarts. Its HTTP address stays the same across restarts, so clients
// keep their URL. Output goes to a log file that a failing test prints.
type Process struct {
	Name string
	// Addr is host:port of the service's HTTP server, MetricsAddr that of
	// its management listener (/metrics).
	Addr, MetricsAddr string
	// Args are the command-line arguments of every start.
	Args []string

	path    string
	env     []string
	logPath string

	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{} // closed when the current run has exited
	expected   bool          // the current run is being stopped on purpose
	unexpected []string      // exits nobody asked for
	starts     int
}

// NewProcess prepares a service binary; env is added to this process's
// environment (later entries win). It does not start it.
func NewProcess(name, path, addr, logPath string, env []string) *Process {
	return &Process{Name: name, Addr: addr, path: path, env: append(os.Environ(), env...), logPath: logPath}
}

// URL is the service's base URL.
func (p *Process) URL() string { return "http://" + p.Addr }

// Start starts the binary. The process must not be running.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("chaos: %s is running", p.Name)
		}
	}
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: %s log: %w", p.Name, err)
	}
	p.starts++
	fmt.Fprintf(log, "=== chaos: start #%d of %s at %s\n", p.starts, p.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.Args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("chaos: start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.expected = cmd, done, false
	// The goroutine ends when the process does; Stop and Kill wait for it.
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		if !p.expected {
			p.unexpected = append(p.unexpected, fmt.Sprintf("%s exited by itself: %v", p.Name, err))
		}
		p.mu.Unlock()
		fmt.Fprintf(log, "=== chaos: %s exited: %v\n", p.Name, err)
		_ = log.Close()
		close(done)
	}()
	return nil
}

// running returns the current process and its done channel, marking the
// coming exit as expected when stopping is set.
func (p *Process) running(stopping bool) (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return nil, nil
	}
	select {
	case <-p.done:
		return nil, nil
	default:
	}
	if stopping {
		p.expected = true
	}
	return p.cmd, p.done
}

// Kill sends SIGKILL (kill -9) and waits until the process is gone.
func (p *Process) Kill() error {
	cmd, done := p.running(true)
	if cmd == nil {
		return nil
	}
	// A stopped process dies of SIGKILL too.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("chaos: kill %s: %w", p.Name, err)
	}
	<-done
	return nil
}

// Restart kills the process and starts it again.
func (p *Process) Restart() error {
	if err := p.Kill(); err != nil {
		return err
	}
	return p.Start()
}

// Stop asks the process to shut down gracefully (SIGTERM) and kills it
// after within.
func (p *Process) Stop(within time.Duration) error {
	cmd, done := p.running(true)
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot act on SIGTERM
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("chaos: stop %s: %w", p.Name, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(within):
	}
	if err := p.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("chaos: %s did not stop within %s and was killed", p.Name, within)
}

// Pause freezes the process (SIGSTOP); Resume lets it go on (SIGCONT).
func (p *Process) Pause() error { return p.signal(syscall.SIGSTOP) }

// Resume continues a paused process.
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT) }

func (p *Process) signal(sig syscall.Signal) error {
	cmd, _ := p.running(false)
	if cmd == nil {
		return fmt.Errorf("chaos: %s is not running", p.Name)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("chaos: signal %s to %s: %w", sig, p.Name, err)
	}
	return nil
}

// PID is the process id of the current run, 0 when not running.
func (p *Process) PID() int {
	cmd, _ := p.running(false)
	if cmd == nil {
		return 0
	}
	return cmd.Process.Pid
}

// Unexpected lists the exits nobody asked for: a crash of a service under
// faults is a finding.
func (p *Process) Unexpected() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.unexpected...)
}

// Ready reports whether /readyz answers 200.
func (p *Process) Ready(ctx context.Context) error {
	if cmd, _ := p.running(false); cmd == nil {
		return fmt.Errorf("%s is not running", p.Name)
	}
	body, status, err := get(ctx, p.URL()+"/readyz")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s /readyz: %d %s", p.Name, status, strings.TrimSpace(string(body)))
	}
	return nil
}

// Metric returns the value of an unlabelled metric from /metrics.
func (p *Process) Metric(ctx context.Context, name string) (float64, error) {
	body, status, err := get(ctx, "http://"+p.MetricsAddr+"/metrics")
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("%s /metrics: %d", p.Name, status)
	}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("%s metric %s: %w", p.Name, name, err)
			}
			return f, nil
		}
	}
	return 0, fmt.Errorf("%s: no metric %s", p.Name, name)
}

// LogTail returns the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Log returns the whole log.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// probe is the HTTP client for health and metrics: no keep-alive, so the
// probes leave no connection (and no server goroutine) behind.
var probe = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(ctx context.Context, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := probe.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago; the services bind it themselves, and keep it across restarts. The
// port is taken below the kernel's ephemeral range: a port from that range
// (what listening on port 0 gives) can be handed to some process's outgoing
// connection before the service binds it.
func FreeAddr() (string, error) {
	low := ephemeralLow()
	for range 200 {
		port := 10000 + rand.IntN(max(low-10000, 1))
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken: try another
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil {
			return "", fmt.Errorf("chaos: free port: %w", err)
		}
		return addr, nil
	}
	return "", errors.New("chaos: free port: none free below the ephemeral range")
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= 10000 {
		return 32768
	}
	return low
}
