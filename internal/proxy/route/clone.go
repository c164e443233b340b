package route

import "slices"

// cloneRule deep-copies a rule so that the table does not share memory with
// its caller.
func cloneRule(r *Rule) Rule {
	c := *r
	c.Matches = slices.Clone(r.Matches)
	for i := range c.Matches {
		m := &c.Matches[i]
		m.Path = clonePtr(m.Path)
		m.Headers = slices.Clone(m.Headers)
		m.Query = slices.Clone(m.Query)
		m.GRPC = clonePtr(m.GRPC)
	}
	c.Filters = cloneFilters(&r.Filters)
	c.Backends = slices.Clone(r.Backends)
	for i := range c.Backends {
		c.Backends[i].Filters = cloneFilters(&c.Backends[i].Filters)
	}
	return c
}

func cloneFilters(f *Filters) Filters {
	c := Filters{
		RequestHeaders:  cloneHeaderModifier(f.RequestHeaders),
		ResponseHeaders: cloneHeaderModifier(f.ResponseHeaders),
	}
	if f.Redirect != nil {
		r := *f.Redirect
		r.Scheme = clonePtr(r.Scheme)
		r.Hostname = clonePtr(r.Hostname)
		r.Path = clonePathModifier(r.Path)
		r.Port = clonePtr(r.Port)
		c.Redirect = &r
	}
	if f.Rewrite != nil {
		c.Rewrite = &Rewrite{
			Hostname: clonePtr(f.Rewrite.Hostname),
			Path:     clonePathModifier(f.Rewrite.Path),
		}
	}
	return c
}

func cloneHeaderModifier(m *HeaderModifier) *HeaderModifier {
	if m == nil {
		return nil
	}
	return &HeaderModifier{
		Set:    slices.Clone(m.Set),
		Add:    slices.Clone(m.Add),
		Remove: slices.Clone(m.Remove),
	}
}

func clonePathModifier(p *PathModifier) *PathModifier {
	if p == nil {
		return nil
	}
	return &PathModifier{
		ReplaceFullPath:    clonePtr(p.ReplaceFullPath),
		ReplacePrefixMatch: clonePtr(p.ReplacePrefixMatch),
	}
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
