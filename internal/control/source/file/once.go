package file

import "github.com/weft-mesh/weft/internal/control/model"

// LoadOnce reads the directory once, as Run's first load reads it (the
// source's trust domain for workload identities), and returns the objects
// it describes and the problems found, without watching anything or
// applying anything to a store: for one-shot commands such as weft explain
// that must see what `weft control --dir` would serve. The error is for a
// directory that cannot be read at all; anything wrong inside is a
// Problem.
func (s *Source) LoadOnce() ([]model.Object, []Problem, error) {
	files, err := scan(s.dir)
	if err != nil {
		return nil, nil, err
	}
	results := make([]fileResult, len(files))
	for i, f := range files {
		results[i] = parseFile(f)
	}
	objs, problems := build(results, s.td)
	return objs, problems, nil
}
