package config

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls onChange whenever the content of the file at path differs from
// what it last saw, starting from running (the bytes of the running config),
// until ctx is done. It watches the file's directory, so editors that write a
// new file and rename it, and Kubernetes ConfigMap volumes that swap a
// symlink, are seen; a slow poll backs up file systems without inotify.
func Watch(ctx context.Context, path string, running []byte, poll time.Duration, log *slog.Logger, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching config file %s: %w", path, err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(path)); err != nil {
		return fmt.Errorf("watching config directory %s: %w", filepath.Dir(path), err)
	}
	last := running
	check := func() {
		cur, err := os.ReadFile(path)
		if err != nil {
			log.Warn("config file unreadable; keeping the running config", "path", path, "error", err)
			return
		}
		if bytes.Equal(cur, last) {
			return
		}
		last = cur
		onChange()
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	// Events come in bursts (write, chmod, rename): settle briefly before
	// reading, so a half-written file is not read.
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.Events:
			settle = time.After(50 * time.Millisecond)
		case err := <-w.Errors:
			log.Warn("config watch error; polling continues", "path", path, "error", err)
		case <-settle:
			settle = nil
			check()
		case <-t.C:
			check()
		}
	}
}
