package tlsid

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// DefaultPollInterval is how often Watch re-reads the files even when no
	// file event arrived, as a fallback for missed or unsupported events.
	DefaultPollInterval = 30 * time.Second

	// settleDelay lets a burst of file events (a Kubernetes volume swap, or
	// cert and key replaced one after the other) settle before reloading,
	// so that a half-updated set of files is rarely seen.
	settleDelay = 100 * time.Millisecond
)

// Watch keeps the Source up to date with its files until ctx is done, then
// returns nil. See WatchEvery; Watch polls every DefaultPollInterval.
func (s *Source) Watch(ctx context.Context, logger *slog.Logger, onChange func(error)) error {
	return s.WatchEvery(ctx, logger, onChange, DefaultPollInterval)
}

// WatchEvery keeps the Source up to date with its files until ctx is done,
// then returns nil.
//
// It watches the directories holding the three files with fsnotify, which
// covers files replaced by rename and the "..data" symlink swap of Kubernetes
// Secret and ConfigMap volumes (as used by cert-manager), and also re-reads
// the files every poll interval in case an event is missed, a directory is
// replaced, or a file is a symlink into a directory that is not watched. If
// file watching cannot be set up, it logs a warning and only polls.
//
// On each change it calls Reload. A successful reload is logged as
// "reloaded certificates" with the new id and not_after, and onChange(nil)
// is called. A failed reload keeps the previous material, is logged, and
// onChange(err) is called; the same error is reported once, not on every
// poll. onChange may be nil; a nil logger discards logs.
func (s *Source) WatchEvery(ctx context.Context, logger *slog.Logger, onChange func(error), poll time.Duration) error {
	if poll <= 0 {
		return errors.New("tlsid: watch poll interval must be positive")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if onChange == nil {
		onChange = func(error) {}
	}

	var (
		events <-chan fsnotify.Event
		errs   <-chan error
	)
	if w, err := fsnotify.NewWatcher(); err != nil {
		logger.Warn("cannot watch certificate files; polling only", "err", err, "poll_interval", poll)
	} else {
		defer w.Close()
		for _, dir := range s.watchDirs() {
			if err := w.Add(dir); err != nil {
				logger.Warn("cannot watch certificate directory; relying on polling", "dir", dir, "err", err, "poll_interval", poll)
			}
		}
		events, errs = w.Events, w.Errors
	}

	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	settle := time.NewTimer(settleDelay)
	settle.Stop()
	defer settle.Stop()

	lastErr := ""
	check := func() {
		changed, err := s.reload()
		if err != nil {
			if err.Error() == lastErr {
				return
			}
			lastErr = err.Error()
			m := s.cur.Load()
			logger.Error("reloading certificates failed; keeping the previous ones",
				"err", err, "id", m.id.String(), "not_after", m.notAfter)
			onChange(err)
			return
		}
		lastErr = ""
		if changed {
			m := s.cur.Load()
			logger.Info("reloaded certificates", "id", m.id.String(), "not_after", m.notAfter)
			onChange(nil)
		}
	}

	// The files may have changed between Load and the watches being set up.
	check()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			// Any other event in a watched directory may concern our
			// files: with the Kubernetes layout the event names "..data",
			// not the file, so names are not filtered.
			settle.Reset(settleDelay)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			logger.Warn("certificate file watch error; relying on polling", "err", err)
		case <-settle.C:
			check()
		case <-ticker.C:
			check()
		}
	}
}

// watchDirs returns the distinct directories holding the Source's files.
func (s *Source) watchDirs() []string {
	var dirs []string
	for _, p := range []string{s.files.CertFile, s.files.KeyFile, s.files.TrustBundleFile} {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if d := filepath.Dir(p); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}
