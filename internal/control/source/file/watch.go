package file

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/model"
)

// Defaults of Options.
const (
	DefaultPoll = 2 * time.Second
	// debounce is how long the directory must be quiet after an event
	// before it is read: editors and atomic writes come in bursts.
	debounce = 100 * time.Millisecond
)

// Options configure a Source.
type Options struct {
	// Logger receives problems and reloads; nil discards them.
	Logger *slog.Logger
	// Poll is how often the directory is read whatever the file system
	// says, for file systems without change notifications; 0 means
	// DefaultPoll.
	Poll time.Duration
	// TrustDomain of workload identities; empty means DefaultTrustDomain.
	TrustDomain string
}

// Source is a model.Source reading a directory of resource files and
// following its changes. Run it once.
type Source struct {
	dir  string
	log  *slog.Logger
	poll time.Duration
	td   spiffeid.TrustDomain

	// pollOnly skips file notifications (tests of the poll fallback).
	pollOnly bool

	mu       sync.Mutex
	problems []Problem
}

// New returns a source of the resource files under dir, which must be a
// directory.
func New(dir string, opts Options) (*Source, error) {
	dir = filepath.Clean(dir)
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("file source: %s is not a directory", dir)
	}
	td, err := spiffeid.TrustDomainFromString(cmp.Or(opts.TrustDomain, DefaultTrustDomain))
	if err != nil {
		return nil, fmt.Errorf("file source: trust domain %q: %w", opts.TrustDomain, err)
	}
	if opts.Poll < 0 {
		return nil, fmt.Errorf("file source: negative poll interval %s", opts.Poll)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{dir: dir, log: log.With("source", "file:"+dir), poll: cmp.Or(opts.Poll, DefaultPoll), td: td}, nil
}

// Name implements model.Source: "file:<dir>".
func (s *Source) Name() string { return "file:" + s.dir }

// Problems returns the problems of the directory as last read.
func (s *Source) Problems() []Problem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.problems)
}

// Run implements model.Source: it loads every file, replaces the source's
// objects in st, then reloads after every change (file system events,
// debounced, and a periodic poll) until ctx ends, when it returns nil.
//
// A document that becomes invalid does not take its objects away: each
// file keeps the objects of its last good version until it is fixed or
// deleted. The error is for a first load the store refuses.
func (s *Source) Run(ctx context.Context, st *model.Store) error {
	var w *fsnotify.Watcher
	if !s.pollOnly {
		var err error
		w, err = fsnotify.NewWatcher()
		if err != nil {
			s.log.Warn("file notifications unavailable; polling only", "poll", s.poll, "error", err)
		} else {
			defer w.Close()
		}
	}
	r := newRunner(s, st, w)
	if err := r.reload(); err != nil {
		return fmt.Errorf("file source %s: first load: %w", s.dir, err)
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			s.log.Debug("file event", "path", ev.Name, "op", ev.Op.String())
			settle.Reset(debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			s.log.Warn("file watch error; reloading", "error", err)
			settle.Reset(debounce)
		case <-settle.C:
			r.reloadLogged()
		case <-tick.C:
			r.reloadLogged()
		}
	}
}

// runner is the state of one Run.
type runner struct {
	*Source
	st *model.Store
	w  *fsnotify.Watcher
	// digest identifies what was last applied: paths, times and contents.
	digest [sha256.Size]byte
	loaded bool
	// lastGood holds, per file, the resources last served from it.
	lastGood map[string][]*resource
	reported map[Problem]bool
	// parsed caches each file's parse by the SHA-256 of its content.
	parsed map[string]parsedFile
}

type parsedFile struct {
	sum    [sha256.Size]byte
	result fileResult
}

func newRunner(s *Source, st *model.Store, w *fsnotify.Watcher) *runner {
	return &runner{Source: s, st: st, w: w, lastGood: map[string][]*resource{}, reported: map[Problem]bool{}}
}

func (r *runner) reloadLogged() {
	if err := r.reload(); err != nil {
		r.log.Error("reloading resources failed; the previous ones stay", "error", err)
	}
}

// reload reads the directory and, if anything changed, applies it.
func (r *runner) reload() error {
	files, err := scan(r.dir)
	if err != nil {
		// The directory is gone or unreadable: keep serving what was
		// read (stale is safer than nothing) and say so.
		r.setProblems([]Problem{{File: r.dir, Message: err.Error() + "; the resources last read are kept"}})
		r.loaded = false // apply the directory again once it is back
		return nil
	}
	r.watchTree()
	d := digest(files)
	if r.loaded && d == r.digest {
		return nil
	}
	// Only files whose content changed are parsed again: with a thousand
	// files, one edit must not cost a thousand parses.
	results := make([]fileResult, len(files))
	parsed := make(map[string]parsedFile, len(files))
	for i, f := range files {
		if f.err != nil || f.dir {
			results[i] = parseFile(f)
			continue
		}
		sum := sha256.Sum256(f.data)
		if c, ok := r.parsed[f.path]; ok && c.sum == sum {
			results[i] = c.result
		} else {
			results[i] = parseFile(f)
		}
		parsed[f.path] = parsedFile{sum: sum, result: results[i]}
	}
	results, good := keepLastGood(results, r.lastGood)
	objs, problems := build(results, r.td)
	if err := r.st.Replace(r.Name(), objs); err != nil {
		return fmt.Errorf("applying %d objects: %w", len(objs), err)
	}
	r.digest, r.loaded, r.lastGood, r.parsed = d, true, good, parsed
	r.setProblems(problems)
	r.log.Info("resources loaded", "files", len(files), "objects", len(objs), "problems", len(problems))
	return nil
}

// setProblems publishes the current problems and logs the new ones.
func (r *runner) setProblems(problems []Problem) {
	r.mu.Lock()
	r.problems = problems
	r.mu.Unlock()
	now := map[Problem]bool{}
	for _, p := range problems {
		now[p] = true
		if !r.reported[p] {
			r.log.Warn("resource problem", "file", p.File, "line", p.Line, "field", p.Field, "problem", p.Message)
		}
	}
	if fixed := len(r.reported) - countIn(r.reported, now); fixed > 0 {
		r.log.Info("resource problems fixed", "count", fixed)
	}
	r.reported = now
}

func countIn(set, in map[Problem]bool) int {
	n := 0
	for p := range set {
		if in[p] {
			n++
		}
	}
	return n
}

// watchTree adds a watch on every directory of the tree not watched yet:
// new subdirectories, and the root again if it was recreated.
func (r *runner) watchTree() {
	if r.w == nil {
		return
	}
	watched := map[string]bool{}
	for _, p := range r.w.WatchList() {
		watched[p] = true
	}
	_ = filepath.WalkDir(r.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if path != r.dir && ignored(d.Name()) {
			return filepath.SkipDir
		}
		if !watched[path] {
			if err := r.w.Add(path); err != nil {
				r.log.Warn("cannot watch directory; polling covers it", "path", path, "error", err)
			}
		}
		return nil
	})
}

// digest hashes what a load depends on.
func digest(files []fileData) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, f := range files {
		h.Write([]byte(f.path))
		binary.LittleEndian.PutUint64(n[:], uint64(f.mtime.UnixNano()))
		h.Write(n[:])
		if f.err != nil {
			h.Write([]byte("\x00error:" + f.err.Error()))
		}
		binary.LittleEndian.PutUint64(n[:], uint64(len(f.data)))
		h.Write(n[:])
		h.Write(f.data)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// keepLastGood gives each broken file the resources of its last good
// version that its valid documents no longer provide, and a directory that
// could not be listed the resources of its files, and returns the
// resources now served per file.
func keepLastGood(results []fileResult, last map[string][]*resource) ([]fileResult, map[string][]*resource) {
	good := map[string][]*resource{}
	present := map[string]bool{}
	for _, f := range results {
		present[f.path] = true
	}
	var extra []fileResult
	for i := range results {
		f := &results[i]
		switch {
		case f.dir:
			prefix := f.path + string(filepath.Separator)
			for path, rs := range last {
				if strings.HasPrefix(path, prefix) && !present[path] {
					extra = append(extra, fileResult{path: path, resources: rs})
					good[path] = rs
					present[path] = true
				}
			}
			continue
		case f.broken:
			have := map[model.Key]bool{}
			for _, res := range f.resources {
				have[res.obj.Key()] = true
			}
			// Clip: f.resources may be shared with the parse cache.
			f.resources = slices.Clip(f.resources)
			for _, res := range last[f.path] {
				if !have[res.obj.Key()] {
					f.resources = append(f.resources, res)
				}
			}
		}
		good[f.path] = f.resources
	}
	results = append(results, extra...)
	slices.SortFunc(results, func(a, b fileResult) int {
		return cmp.Compare(filepath.ToSlash(a.path), filepath.ToSlash(b.path))
	})
	return results, good
}
