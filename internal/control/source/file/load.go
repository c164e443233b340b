package file

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/convert"
)

// DefaultTrustDomain is the trust domain of workload identities when
// Options.TrustDomain is empty, and for Load.
const DefaultTrustDomain = "weft.local"

// Problem is something wrong in the directory: a document that is ignored
// (invalid YAML, an unknown kind or field, a wrong type or value), a
// duplicate, a reference that resolves to nothing. The message says what
// was done about it.
type Problem struct {
	// File is the file's path (the directory joined with the path in it).
	File string
	// Line is the line of the field at fault, else of its document; 0 for
	// a problem of the whole file.
	Line int
	// Field is the path of the field within the document, e.g.
	// "spec.ports[0].targetPort"; empty for the whole document or file.
	Field   string
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	if p.Field != "" {
		b.WriteString(": " + p.Field)
	}
	b.WriteString(": " + p.Message)
	return b.String()
}

// Load reads every resource file under dir once and returns the model
// objects they describe (sorted by kind, namespace and name) and the
// problems found. Workload identities use DefaultTrustDomain. The error is
// for a directory that cannot be read at all; anything wrong inside is a
// Problem.
func Load(dir string) ([]model.Object, []Problem, error) {
	files, err := scan(dir)
	if err != nil {
		return nil, nil, err
	}
	results := make([]fileResult, len(files))
	for i, f := range files {
		results[i] = parseFile(f)
	}
	objs, problems := build(results, spiffeid.RequireTrustDomainFromString(DefaultTrustDomain))
	return objs, problems, nil
}

// fileData is one resource file as read, or the error reading a file or a
// directory.
type fileData struct {
	path  string
	data  []byte
	mtime time.Time
	err   error
	dir   bool // path is a directory that could not be listed
}

// scan reads the resource files under dir, sorted by path.
func scan(dir string) ([]fileData, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("reading resource directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("reading resource directory %s: not a directory", dir)
	}
	var out []fileData
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			if !errors.Is(err, fs.ErrNotExist) {
				out = append(out, fileData{path: path, err: err, dir: d == nil || d.IsDir()})
			}
			return nil
		}
		if path != dir && ignored(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isResourceFile(d.Name()) {
			return nil
		}
		if f, ok := readFile(path); ok {
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading resource directory %s: %w", dir, err)
	}
	slices.SortFunc(out, func(a, b fileData) int { return cmp.Compare(filepath.ToSlash(a.path), filepath.ToSlash(b.path)) })
	return out, nil
}

// readFile reads one resource file, following a symbolic link (Kubernetes
// mounts ConfigMaps as links); false when there is no regular file there
// (any more).
func readFile(path string) (fileData, bool) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileData{}, false
	}
	if err != nil {
		return fileData{path: path, err: err}, true
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fileData{path: path, err: err}, true
	}
	if !info.Mode().IsRegular() {
		return fileData{}, false
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err == nil && len(data) > maxFileBytes {
		err = fmt.Errorf("the file is larger than %d bytes; split it", maxFileBytes)
	}
	return fileData{path: path, data: data, mtime: info.ModTime(), err: err}, true
}

// ignored reports whether a directory entry is hidden (editors' swap and
// backup files, .git, a ConfigMap volume's timestamped directories) or a
// backup copy.
func ignored(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~")
}

func isResourceFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// fileResult is a file's valid resources and its problems.
type fileResult struct {
	path      string
	resources []*resource
	problems  []Problem
	// broken: the file or one of its documents could not be used.
	broken bool
	dir    bool
}

// parseFile decodes the documents of one file.
func parseFile(f fileData) fileResult {
	out := fileResult{path: f.path, dir: f.dir}
	if f.err != nil {
		out.broken = true
		out.problems = append(out.problems, Problem{File: f.path, Message: "cannot be read: " + f.err.Error()})
		return out
	}
	docs, errLine, err := splitDocuments(f.data)
	if err != nil {
		out.broken = true
		out.problems = append(out.problems, Problem{File: f.path, Line: errLine, Message: err.Error() + "; this document and the rest of the file are ignored until it is fixed"})
	}
	for _, d := range docs {
		res, problems := parseDocument(f.path, d, f.mtime)
		out.problems = append(out.problems, problems...)
		if res == nil {
			out.broken = true
			continue
		}
		out.resources = append(out.resources, res)
	}
	return out
}

// build merges the resources of every file (in path order), derives the
// endpoints and checks references.
func build(files []fileResult, td spiffeid.TrustDomain) ([]model.Object, []Problem) {
	var problems []Problem
	winners := map[model.Key]*resource{}
	var order []*resource
	for _, f := range files {
		problems = append(problems, f.problems...)
		for _, r := range f.resources {
			k := r.obj.Key()
			if w, dup := winners[k]; dup {
				problems = append(problems, Problem{File: r.file, Line: r.line, Field: "metadata.name",
					Message: fmt.Sprintf("%s is also defined at %s:%d, which wins (first in path order); this one is ignored", k, w.file, w.line)})
				continue
			}
			winners[k] = r
			order = append(order, r)
		}
	}

	services := map[model.ServiceRef]*model.Service{}
	var workloads []*model.Workload
	known := map[model.ObjectRef]bool{}
	for _, r := range order {
		switch o := r.obj.(type) {
		case *model.Service:
			services[o.Ref()] = o
		case *model.Workload:
			workloads = append(workloads, o)
			known[o.Ref()] = true
		}
	}
	slices.SortFunc(workloads, func(a, b *model.Workload) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	index := convert.IndexWorkloads(workloads)
	isWorkload := func(w model.ObjectRef) bool { return known[w] }

	objs := make([]model.Object, 0, len(order))
	for _, r := range order {
		for _, ref := range r.refs {
			if msg := convert.CheckRef(services, isWorkload, ref.Reference); msg != "" {
				problems = append(problems, Problem{File: r.file, Line: ref.line, Field: ref.Field, Message: msg})
			}
		}
		svc, ok := r.obj.(*model.Service)
		if !ok || len(svc.Selector) == 0 {
			objs = append(objs, r.obj)
			continue
		}
		// A copy: endpoints may resolve a target port, and r may be kept
		// for the next load.
		c := *svc
		c.Ports = slices.Clone(svc.Ports)
		set, ps := convert.WorkloadEndpoints(&c, r.targetNames, index.Candidates(c.Namespace, c.Selector), td)
		for _, p := range ps {
			line := r.line
			if p.Port >= 0 {
				line = r.targetLines[p.Port]
			}
			problems = append(problems, Problem{File: r.file, Line: line, Field: p.Field, Message: p.Message})
		}
		objs = append(objs, &c, set)
	}
	slices.SortFunc(objs, func(a, b model.Object) int {
		ka, kb := a.Key(), b.Key()
		return cmp.Or(cmp.Compare(ka.Kind, kb.Kind), cmp.Compare(ka.Namespace, kb.Namespace), cmp.Compare(ka.Name, kb.Name))
	})
	sortProblems(problems)
	return objs, slices.Compact(problems)
}

func sortProblems(ps []Problem) {
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(filepath.ToSlash(a.File), filepath.ToSlash(b.File)), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message))
	})
}
