package route

// BackendShares returns, for each of the rule's backends in order, the
// probability that Selected.PickBackend picks it: its weight over the sum
// of the weights. Every share is 0 when the weights sum to 0 (PickBackend
// then picks nothing). It is for explaining a routing decision, e.g. "90%
// to web-v1"; the proxy itself only calls PickBackend.
func (r *Rule) BackendShares() []float64 {
	if r == nil {
		return nil
	}
	var total uint64
	for i := range r.Backends {
		total += uint64(r.Backends[i].Weight)
	}
	out := make([]float64, len(r.Backends))
	if total == 0 {
		return out
	}
	for i := range r.Backends {
		out[i] = float64(r.Backends[i].Weight) / float64(total)
	}
	return out
}
