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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/atomicfile"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/identity"
	"github.com/weft-mesh/weft/internal/control/jointoken"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/control/source/file"
)

// Options configure Run.
type Options struct {
	// DataDir keeps the CA, join tokens, mesh resources and logs; it is
	// reused by the next run (same CA).
	DataDir string
	// BinDir holds weft-proxy and weft-demo; default: beside this binary.
	BinDir string
	// Out receives what to try next.
	Out    io.Writer
	Logger *slog.Logger
	// Trickle is the period of the demo traffic; default 500ms.
	Trickle time.Duration
	// Spec is the user's services (`weft up -f`); nil runs the demo.
	Spec *Spec
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
	needed := []string{"weft-proxy"}
	if o.Spec == nil {
		needed = append(needed, "weft-demo")
	}
	for _, b := range needed {
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
	for _, d := range []string{"mesh", "proxies", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return fmt.Errorf("creating the data directory: %w", err)
		}
	}
	authority, err := identity.OpenAuthority(filepath.Join(dir, "ca"), ca.Options{TrustDomain: trustDomain}, o.Logger)
	if err != nil {
		return fmt.Errorf("certificate authority: %w", err)
	}
	tokens, err := jointoken.Open(dir, nil)
	if err != nil {
		return err
	}

	spec := o.Spec
	if spec == nil {
		if spec, err = demoSpec(bins["weft-demo"]); err != nil {
			return err
		}
	}
	p, err := newPlan(spec)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "mesh", "mesh.yaml"), p.mesh()); err != nil {
		return err
	}
	proxies := []string{}
	for _, svc := range spec.Services {
		proxies = append(proxies, svc.Name)
	}
	if spec.Entry != "" {
		proxies = append(proxies, "entry")
	}
	// Each proxy proves its identity with a single-use join token and gets
	// its certificate from the control plane, as on a VM.
	td := authority.Current().TrustDomain()
	for _, name := range proxies {
		id := spiffeid.RequireFromPath(td, "/ns/"+spec.Namespace+"/sa/"+name)
		tok, _, err := tokens.Create(jointoken.CreateOptions{Identity: id, TTL: 10 * time.Minute})
		if err != nil {
			return fmt.Errorf("join token of %s: %w", name, err)
		}
		if err := writeFile(filepath.Join(dir, "proxies", name+".token"), tok+"\n"); err != nil {
			return err
		}
		boot := fmt.Sprintf("admin: {address: \"127.0.0.1:%d\"}\n", p.admin[name])
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
		cpDone <- server.Run(cpCtx, server.Options{Listener: ln, Sources: []model.Source{src}, Logger: o.Logger,
			Identity: &identity.Options{Authority: authority, Tokens: tokens, Logger: o.Logger}})
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
	start := func(name string, env []string, argv ...string) error {
		logFile, err := os.Create(filepath.Join(dir, "logs", name+".log"))
		if err != nil {
			return fmt.Errorf("log of %s: %w", name, err)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = childAttrs()
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return fmt.Errorf("starting %s (%s): %w", name, strings.Join(argv, " "), err)
		}
		pr := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
		go func() { pr.done <- cmd.Wait(); logFile.Close() }()
		procs = append(procs, pr)
		return nil
	}
	cpAddr := fmt.Sprintf("127.0.0.1:%d", p.cp)
	for _, svc := range spec.Services {
		env := p.env(svc)
		vars := map[string]string{}
		for _, e := range env {
			k, v, _ := strings.Cut(e, "=")
			vars[k] = v
		}
		argv := make([]string, len(svc.Command))
		for i, a := range svc.Command {
			argv[i] = os.Expand(a, func(k string) string {
				if v, ok := vars[k]; ok {
					return v
				}
				return os.Getenv(k)
			})
		}
		if err := start(svc.Name, env, argv...); err != nil {
			return err
		}
	}
	for _, name := range proxies {
		nodeID := name + "-1" // the workload's name
		if name == "entry" {
			nodeID = "entry" // the client side: no workload, no inbound
		}
		args := []string{bins["weft-proxy"], "run", "--config", filepath.Join(dir, "proxies", name+".yaml"),
			"--control-plane", cpAddr, "--node-id", nodeID, "--log-format", "text",
			"--join-token-file", filepath.Join(dir, "proxies", name+".token"), "--trust-bundle", filepath.Join(dir, "ca", ca.AnchorCertFile)}
		if name == "entry" {
			args = append(args, "--watch", spec.Namespace+"/"+spec.Entry, "--explicit-base", strconv.Itoa(p.base["entry"]))
		} else if svc := spec.Services[slices.IndexFunc(spec.Services, func(s Service) bool { return s.Name == name })]; len(svc.Calls) > 0 {
			args = append(args, "--watch", p.watches(svc), "--explicit-base", strconv.Itoa(p.base[name]))
		}
		if err := start(name+"-proxy", nil, args...); err != nil {
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

	if err := waitUp(ctx, p, procs, dir); err != nil {
		return err
	}
	p.hints(o.Out, dir)

	var wg sync.WaitGroup
	tctx, stopTrickle := context.WithCancel(ctx)
	defer wg.Wait()
	defer stopTrickle() // runs first: the trickle ends on every return path
	if spec.Trickle {
		wg.Go(func() { trickle(tctx, p.entryURL(), o.Trickle, o.Logger) })
	}
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

// waitUp waits until every proxy is ready (it has its config) and, with an
// entry, until a request through the whole mesh succeeds.
func waitUp(ctx context.Context, p plan, procs []*proc, dir string) error {
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
		last = p.ready(c)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("the mesh was not up within 60s (%v); logs are in %s", last, filepath.Join(dir, "logs"))
}

// ready checks every proxy's /ready, then the entry.
func (p plan) ready(c *http.Client) error {
	for name, port := range p.admin {
		if name == "entry" && p.spec.Entry == "" {
			continue
		}
		if err := get(c, fmt.Sprintf("http://127.0.0.1:%d/ready", port)); err != nil {
			return fmt.Errorf("proxy of %s: %w", name, err)
		}
	}
	if p.spec.Entry != "" {
		if err := get(c, p.entryURL()); err != nil {
			return fmt.Errorf("%s through the mesh: %w", p.spec.Entry, err)
		}
	}
	return nil
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
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
	return atomicfile.Write(path, []byte(content), 0o600)
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
