package explain

import (
	"fmt"
	"net/netip"
	"strings"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/proxy/config"
)

// backendsStep: each backend service the request may go to, its policies
// and its endpoints, as the caller's proxy config has them.
func (x *explainer) backendsStep() error {
	x.out.Backends = []Backend{}
	for _, c := range x.chosen {
		cs := x.callerCfg.compiled.Services[c.name]
		if cs == nil {
			return fmt.Errorf("the config rendered for %s's proxy lacks the backend %s its route names", x.caller.Ref(), c.name)
		}
		x.involveName(c.name)
		ref := x.byName[c.name]
		b := Backend{Service: c.name, Weight: c.weight, Share: c.share, LoadBalancer: cs.Policy, Endpoints: []Endpoint{}}
		if c.backend != nil && c.share == 0 {
			// Never picked: its policies and endpoints play no part.
			b.Note = "weight 0: never picked"
			if parent, ok := x.byName[c.name]; ok && c.ref != "" && !strings.HasPrefix(c.ref+":", parent.ServiceRef.String()+":") {
				b.Note = fmt.Sprintf("the backendRef %s resolves to no service port, so the control plane gives it weight 0 (and the parent's name): never picked; see the problems", c.ref)
			}
			x.out.Backends = append(x.out.Backends, b)
			continue
		}
		switch h := cs.HashOn; {
		case h.Header != "":
			b.LoadBalancer += " on header " + h.Header
		case h.Cookie != "":
			b.LoadBalancer += " on cookie " + h.Cookie
		case h.SourceIP:
			b.LoadBalancer += " on the source IP"
		}
		if c.backend != nil {
			b.RequestChanges = requestChanges(x.filtered, c.req)
			b.ResponseHeaders = describeModifier(c.backend.Filters.ResponseHeaders)
		}
		rendered := renderedService(x.callerCfg.rendered, c.name)
		b.RetryBudget = RetryBudget{RetryRatio: cs.RetryBudget.RetryRatio, MinRetriesPerSecond: cs.RetryBudget.MinRetriesPerSecond, TTL: dur(cs.RetryBudget.TTL)}
		if rendered.GetRetryBudget() != nil {
			var names []string
			for _, p := range x.snap.RetryBudgetsFor(ref.ServiceRef) {
				if p.Namespace == ref.Namespace {
					names = append(names, p.Ref().String())
				}
			}
			b.RetryBudget.SetBy = setBy("RetryBudget", names)
		}
		b.CircuitBreaker = breakerOf(cs.Breaker)
		if rendered.GetCircuitBreaker() != nil {
			var names []string
			for _, p := range x.snap.CircuitBreakersFor(ref.ServiceRef) {
				if p.Namespace == ref.Namespace {
					names = append(names, p.Ref().String())
				}
			}
			b.CircuitBreaker.SetBy = setBy("CircuitBreaker", names)
		}
		for _, ep := range cs.Endpoints {
			e := Endpoint{Address: ep.Address.String(), Zone: ep.Zone, Weight: ep.Weight, Hop: "plaintext"}
			if ep.ProxyAddress.IsValid() {
				e.ProxyAddress = ep.ProxyAddress.String()
			}
			if ep.Meshed() {
				e.Identity = ep.Identity.String()
				if x.caller.Meshed {
					e.Hop = "mtls"
				}
			}
			if w := x.workloadAt(ref.ServiceRef, ep.Address); w != nil {
				e.Workload = w.Ref().String()
			}
			b.Endpoints = append(b.Endpoints, e)
		}
		if len(cs.Endpoints) == 0 && b.Note == "" {
			b.Note = fmt.Sprintf("no endpoint (no ready Workload matches the service's selector on this port): a request sent here gets 503 (gRPC UNAVAILABLE) from the caller's proxy, with a Weft-Proxy-Error header naming %s", c.name)
		}
		x.out.Backends = append(x.out.Backends, b)
	}
	return nil
}

// setBy names the policy that set a service's budget or breaker: the only
// one of its namespace targeting it, or the oldest valid one of several.
func setBy(kind string, names []string) string {
	switch len(names) {
	case 0:
		return kind
	case 1:
		return kind + " " + names[0]
	}
	return "the oldest valid " + kind + " of " + strings.Join(names, ", ")
}

func breakerOf(b config.Breaker) CircuitBreaker {
	out := CircuitBreaker{MaxRequests: b.Limits.MaxRequests, MaxPending: b.Limits.MaxPending, PendingTimeout: dur(b.Limits.PendingTimeout)}
	if o := b.Outlier; o != nil {
		out.Outlier = &Outlier{ConsecutiveFailures: o.ConsecutiveFailures, SuccessRateMinRequests: o.SuccessRateMinRequests,
			SuccessRateStdevFactor: o.SuccessRateStdevFactor, Interval: dur(o.Interval), BaseEjectionTime: dur(o.BaseEjectionTime),
			MaxEjectionPercent: o.MaxEjectionPercent}
	}
	if a := b.Adaptive; a != nil {
		out.Adaptive = &Adaptive{InitialLimit: a.InitialLimit, MinLimit: a.MinLimit, MaxLimit: a.MaxLimit}
	}
	return out
}

// renderedService finds a service in a rendered config.
func renderedService(cfg *weftv1.ProxyConfig, name string) *weftv1.Service {
	for _, s := range cfg.GetServices() {
		if s.GetName() == name {
			return s
		}
	}
	return nil
}

// workloadAt finds the workload behind an endpoint address of a service:
// the one its model endpoint names, else the workload of the service's
// namespace with that address.
func (x *explainer) workloadAt(svc model.ServiceRef, addr netip.AddrPort) *model.Workload {
	for _, e := range x.snap.Endpoints[svc] {
		if e.Address == addr && e.Workload != "" {
			if w := x.snap.Workloads[model.ObjectRef{Namespace: svc.Namespace, Name: e.Workload}]; w != nil {
				return w
			}
		}
	}
	var found *model.Workload
	for ref, w := range x.snap.Workloads {
		if ref.Namespace == svc.Namespace && w.Address == addr.Addr().Unmap() && (found == nil || w.Name < found.Name) {
			found = w
		}
	}
	return found
}
