package k8stest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// controllerManager is a running kube-controller-manager.
type controllerManager struct {
	cmd  *exec.Cmd
	out  *tailWriter
	done chan struct{} // closed when the process has exited; then waitErr is set
	// waitErr is cmd.Wait's result, read only after done is closed.
	waitErr error
}

// startControllerManager starts kube-controller-manager with flags and
// returns once its ServiceAccount controller has created the default
// ServiceAccount of the default namespace: proof that it reached the
// apiserver and runs its controllers.
func startControllerManager(ctx context.Context, path string, flags map[string][]string, out *tailWriter,
	cs kubernetes.Interface, timeout time.Duration) (*controllerManager, error) {
	var args []string
	for _, name := range slices.Sorted(maps.Keys(flags)) {
		for _, v := range flags[name] {
			args = append(args, "--"+name+"="+v)
		}
	}
	// Not exec.CommandContext: the process lives until Stop, beyond ctx.
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	m := &controllerManager{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		m.waitErr = cmd.Wait()
		close(m.done)
	}()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return m, nil
		}
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("kube-controller-manager exited before it was ready: %w%s",
				m.waitErr, out.describe(binControllerManager, 40))
		case <-ctx.Done():
			stopErr := m.stop()
			return nil, errors.Join(fmt.Errorf("kube-controller-manager was not ready within %v "+
				"(its ServiceAccount controller did not create default/default; last API error: %v): %w%s",
				timeout, lastErr, ctx.Err(), out.describe(binControllerManager, 40)), stopErr)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, and SIGKILL when the process has not exited after
// stopTimeout. A process that had already exited is reported.
func (m *controllerManager) stop() error {
	select {
	case <-m.done:
		return fmt.Errorf("kube-controller-manager had exited before it was stopped: %v%s",
			m.waitErr, m.out.describe(binControllerManager, 40))
	default:
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping kube-controller-manager: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-m.done:
		return nil
	case <-timer.C:
	}
	if err := m.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing kube-controller-manager: %w", err)
	}
	<-m.done
	return fmt.Errorf("kube-controller-manager did not exit within %v of SIGTERM and was killed", stopTimeout)
}
