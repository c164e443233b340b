package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/control/source/file"
)

// Options configure Run.
type Options struct {
	// DataDir keeps the CA, certificates, mesh resources and logs; it is
	// reused by the next run (same CA).
	DataDir string
	// BinDir holds weft-proxy and weft-demo; default: beside this binary.
	BinDir string
	// Out receives what to try next.
	Out    io.Writer
	Logger *slog.Logger
	// Trickle is the period of the demo traffic; default 500ms.
	Trickle time.Duration
}

const (
	trustDomain = "weft.local"
	namespace   = "demo"
)

// proc is a child process weft up started.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

// Run starts the mesh and the demo, prints what to try, and runs until ctx
// ends; then it stops every process it started.
func Run(ctx context.Context, o Options) (err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Trickle <= 0 {
		o.Trickle = 500 * time.Millisecond
	}
	if o.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding weft-proxy beside weft: %w", err)
		}
		o.BinDir = filepath.Dir(exe)
	}
	bins := map[string]string{}
	for _, b := range []string{"weft-proxy", "weft-demo"} {
		p := filepath.Join(o.BinDir, b)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s not found in %s: build it with `make build` (or pass --bin-dir): %w", b, o.BinDir, err)
		}
		bins[b] = p
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	for _, d := range []string{"mesh", "certs", "proxies", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return fmt.Errorf("creating the data directory: %w", err)
		}
	}
	authority, err := ca.LoadOrCreate(filepath.Join(dir, "ca"), ca.Options{TrustDomain: trustDomain})
	if err != nil {
		return fmt.Errorf("certificate authority: %w", err)
	}

	ports, err := freePorts(15)
	if err != nil {
		return err
	}
	p := plan{
		cp:    ports[0],
		app:   map[string]int{"frontend": ports[1], "catalog": ports[2], "inventory": ports[3]},
		in:    map[string]int{"frontend": ports[4], "catalog": ports[5], "inventory": ports[6]},
		admin: map[string]int{"entry": ports[7], "frontend": ports[8], "catalog": ports[9], "inventory": ports[10]},
	}
	if p.entryBase, err = freeRange(1); err != nil {
		return err
	}
	if p.frontBase, err = freeRange(2); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "mesh", "demo.yaml"), p.mesh()); err != nil {
		return err
	}
	for _, name := range []string{"entry", "frontend", "catalog", "inventory"} {
		id := spiffeid.RequireFromPath(authority.TrustDomain(), "/ns/"+namespace+"/sa/"+name)
		certFile, keyFile, bundleFile, err := authority.IssueFiles(filepath.Join(dir, "certs", name), name, id, 24*time.Hour)
		if err != nil {
			return fmt.Errorf("issuing the certificate of %s: %w", name, err)
		}
		boot := fmt.Sprintf("admin: {address: \"127.0.0.1:%d\"}\ntls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}\n",
			p.admin[name], certFile, keyFile, bundleFile)
		if err := writeFile(filepath.Join(dir, "proxies", name+".yaml"), boot); err != nil {
			return err
		}
	}

	// The control plane runs in this process.
	src, err := file.New(filepath.Join(dir, "mesh"), file.Options{Logger: o.Logger, TrustDomain: trustDomain})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.cp))
	if err != nil {
		return fmt.Errorf("control plane address: %w", err)
	}
	cpCtx, cpStop := context.WithCancel(context.Background())
	cpDone := make(chan error, 1)
	go func() {
		cpDone <- server.Run(cpCtx, server.Options{Listener: ln, Sources: []model.Source{src}, Logger: o.Logger})
	}()

	var procs []*proc
	defer func() {
		stopAll(procs, o.Logger)
		cpStop()
		if cerr := <-cpDone; cerr != nil && err == nil {
			err = cerr
		}
		os.Remove(filepath.Join(dir, "pids"))
	}()
	start := func(name string, bin string, args ...string) error {
		logFile, err := os.Create(filepath.Join(dir, "logs", name+".log"))
		if err != nil {
			return fmt.Errorf("log of %s: %w", name, err)
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = childAttrs()
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return fmt.Errorf("starting %s: %w", name, err)
		}
		pr := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
		go func() { pr.done <- cmd.Wait(); logFile.Close() }()
		procs = append(procs, pr)
		return nil
	}
	cpAddr := fmt.Sprintf("127.0.0.1:%d", p.cp)
	addr := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
	steps := []struct {
		name string
		bin  string
		args []string
	}{
		{"catalog", bins["weft-demo"], []string{"catalog", "--listen", addr(p.app["catalog"])}},
		{"inventory", bins["weft-demo"], []string{"inventory", "--listen", addr(p.app["inventory"])}},
		{"frontend", bins["weft-demo"], []string{"frontend", "--listen", addr(p.app["frontend"]),
			"--catalog", addr(p.frontBase), "--inventory", addr(p.frontBase + 1)}},
	}
	for _, name := range []string{"catalog", "inventory", "frontend", "entry"} {
		nodeID := name + "-1" // the workload's name
		if name == "entry" {
			nodeID = "entry" // the demo's client: no workload, no inbound
		}
		args := []string{"run", "--config", filepath.Join(dir, "proxies", name+".yaml"), "--control-plane", cpAddr,
			"--node-id", nodeID, "--log-format", "text"}
		switch name {
		case "frontend":
			args = append(args, "--watch", namespace+"/catalog,"+namespace+"/inventory", "--explicit-base", strconv.Itoa(p.frontBase))
		case "entry":
			args = append(args, "--watch", namespace+"/frontend", "--explicit-base", strconv.Itoa(p.entryBase))
		}
		steps = append(steps, struct {
			name string
			bin  string
			args []string
		}{name + "-proxy", bins["weft-proxy"], args})
	}
	for _, s := range steps {
		if err := start(s.name, s.bin, s.args...); err != nil {
			return err
		}
	}
	var pids []string
	for _, pr := range procs {
		pids = append(pids, strconv.Itoa(pr.cmd.Process.Pid))
	}
	if err := writeFile(filepath.Join(dir, "pids"), strings.Join(pids, "\n")+"\n"); err != nil {
		return err
	}

	front := fmt.Sprintf("http://127.0.0.1:%d/", p.entryBase)
	if err := waitUp(ctx, front, procs, dir); err != nil {
		return err
	}
	p.hints(o.Out, front, dir)

	var wg sync.WaitGroup
	tctx, stopTrickle := context.WithCancel(ctx)
	defer wg.Wait()
	defer stopTrickle() // runs first: the trickle ends on every return path
	wg.Go(func() { trickle(tctx, front, o.Trickle, o.Logger) })
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(o.Out, "\nstopping weft: every process it started")
			return nil
		default:
		}
		for _, pr := range procs {
			select {
			case err := <-pr.done:
				pr.done <- err
				return fmt.Errorf("%s exited (%v); its log is %s", pr.name, err, filepath.Join(dir, "logs", pr.name+".log"))
			default:
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitUp waits until a request through the whole mesh succeeds.
func waitUp(ctx context.Context, url string, procs []*proc, dir string) error {
	deadline := time.Now().Add(60 * time.Second)
	c := &http.Client{Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		for _, pr := range procs {
			select {
			case err := <-pr.done:
				pr.done <- err
				return fmt.Errorf("%s exited while starting (%v); its log is %s", pr.name, err, filepath.Join(dir, "logs", pr.name+".log"))
			default:
			}
		}
		resp, err := c.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("the demo did not answer through the mesh within 60s (%v); logs are in %s", last, filepath.Join(dir, "logs"))
}

// trickle sends demo traffic until ctx ends.
func trickle(ctx context.Context, url string, every time.Duration, log *slog.Logger) {
	c := &http.Client{Timeout: 5 * time.Second}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.CloseIdleConnections()
			return
		case <-t.C:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				log.Debug("demo request failed", "error", err)
			}
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// stopAll sends SIGTERM to every process (proxies drain), waits, and kills
// what is left after 15s.
func stopAll(procs []*proc, log *slog.Logger) {
	for _, pr := range procs {
		_ = pr.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for _, pr := range procs {
		select {
		case <-pr.done:
		case <-deadline:
			log.Warn("process did not stop; killing it", "process", pr.name)
			_ = pr.cmd.Process.Kill()
			<-pr.done
		}
	}
}

func writeFile(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// freePorts reserves n distinct free loopback ports (they are released for
// the processes to bind right after).
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding free ports: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// freeRange finds n consecutive free loopback ports and returns the first.
func freeRange(n int) (int, error) {
	for range 100 {
		ps, err := freePorts(1)
		if err != nil {
			return 0, err
		}
		ok := true
		var lns []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ps[0]+i))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, l)
		}
		for _, l := range lns {
			l.Close()
		}
		if ok {
			return ps[0], nil
		}
	}
	return 0, errors.New("no range of free ports found")
}
