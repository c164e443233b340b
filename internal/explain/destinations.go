package explain

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
	"github.com/weft-mesh/weft/internal/proxy/authz"
	"github.com/weft-mesh/weft/internal/proxy/config"
)

// destinationsStep: at each destination workload of the backends that get
// a share of the requests, the inbound port's mTLS mode and the
// authorization decision, by that workload's own proxy config.
func (x *explainer) destinationsStep() error {
	x.out.Destinations = []Destination{}
	if x.out.Routing.Outcome == "redirect" || x.out.Routing.Outcome == "no-backend" {
		return nil
	}
	opaque := x.out.Routing.Outcome == "opaque"
	seen := map[string]bool{}
	for i, c := range x.chosen {
		if c.share == 0 {
			continue
		}
		b := &x.out.Backends[i]
		ref := x.byName[c.name]
		for _, ep := range b.Endpoints {
			key := c.name + " " + ep.Address
			if seen[key] {
				continue
			}
			seen[key] = true
			d, err := x.destination(ref.ServiceRef, c, ep, opaque)
			if err != nil {
				return err
			}
			x.out.Destinations = append(x.out.Destinations, d)
		}
	}
	return nil
}

// destination explains the request arriving at one endpoint.
func (x *explainer) destination(svc model.ServiceRef, c chosen, ep Endpoint, opaque bool) (Destination, error) {
	d := Destination{Workload: ep.Workload, Backend: c.name, Address: ep.Address, Identity: ep.Identity, Meshed: ep.Identity != ""}
	addr, err := netip.ParseAddrPort(ep.Address)
	if err != nil {
		return d, fmt.Errorf("endpoint %s of %s: %w", ep.Address, c.name, err)
	}
	d.Port = addr.Port()
	w := x.workloadAt(svc, addr)
	switch {
	case w == nil && d.Meshed:
		d.Allowed = true
		d.Note = "no Workload of the directory has this address: its proxy's config is not known, so its mTLS mode and authorization cannot be explained"
		return d, nil
	case w == nil:
		d.Allowed = true
		d.Note = "not meshed and described by no Workload: no inbound proxy checks anything; the application gets the request as sent, in plaintext"
		return d, nil
	case !w.Meshed || !d.Meshed:
		d.Allowed = true
		d.Note = "not meshed (spec.meshed: false): no inbound proxy, so no mTLS or authorization policy applies; the application gets the request as sent, in plaintext"
		return d, nil
	}
	x.involve(w.Key())
	x.involve(model.Key{Kind: model.KindNamespace, Name: w.Namespace})
	x.involveSecurity(w.Namespace)

	pc := x.configs[w.Ref()]
	if pc == nil {
		id, err := spiffeid.FromString(ep.Identity)
		if err != nil {
			return d, fmt.Errorf("endpoint %s of %s: identity %q: %w", ep.Address, c.name, ep.Identity, err)
		}
		if pc, err = x.proxyFor(w, id); err != nil {
			return d, err
		}
		x.configs[w.Ref()] = pc
	}
	in := pc.compiled.Inbound
	if in == nil {
		return d, fmt.Errorf("the config rendered for %s's proxy has no inbound listener", w.Ref())
	}
	if ps := in.Port(d.Port); ps.Skip {
		d.Note = fmt.Sprintf("port %d is skipped by its proxy (one of the proxy's own ports): it answers 403", d.Port)
		return d, nil
	}

	// mTLS: the mode the compiled config enforces, and the policy the
	// control plane took it from.
	refused, _ := in.PlaintextRefused(d.Port)
	pm := translate.WorkloadPortMTLS(x.snap, w, d.Port, x.mesh)
	m := &PortMTLS{Mode: string(config.MTLSPermissive), PortEntry: pm.PortEntry, Hop: "plaintext"}
	if refused {
		m.Mode = string(config.MTLSStrict)
	}
	if pm.Policy != nil {
		m.Policy = pm.Policy.Ref().String()
		x.involve(pm.Policy.Key())
	}
	if x.caller.Meshed {
		m.Hop = "mtls"
	}
	m.Accepted = m.Hop == "mtls" || !refused
	d.MTLS = m
	if !m.Accepted {
		d.Authorization = &Authorization{}
		return d, nil
	}

	// Authorization: the destination proxy's own evaluator, on the
	// request as it arrives (after the caller's filters and the backend's).
	req := &authz.Request{Port: d.Port, Self: authz.NewIdentity(spiffeid.RequireFromString(ep.Identity))}
	if m.Hop == "mtls" {
		req.Source = authz.NewIdentity(x.callerID)
	}
	if !opaque {
		req.HTTP = c.req
	}
	dec := in.Authz.Evaluate(req)
	a := &Authorization{Evaluated: true, Allowed: dec.Allowed, Policy: dec.By.Policy, Rule: dec.By.Rule, By: dec.By.String(),
		WouldDeny: dec.WouldDeny}
	if dec.WouldDeny {
		a.DryRunPolicy, a.DryRunRule = dec.DryRun.Policy, dec.DryRun.Rule
	}
	a.DefaultPolicy, a.DefaultSetBy = translate.DefaultInbound(x.snap, w, x.mesh)
	for _, p := range in.Authz.Describe().Policies {
		if len(p.Ports) > 0 && !slices.Contains(p.Ports, d.Port) {
			continue
		}
		s := p.Name + " " + p.Action
		if p.DryRun {
			s += " (dry run)"
		}
		if !slices.Contains(a.Policies, s) {
			a.Policies = append(a.Policies, s)
		}
	}
	d.Authorization = a
	d.Allowed = dec.Allowed
	return d, nil
}

// involveSecurity records the authorization and mTLS policies that may
// apply to a workload of namespace ns: its namespace's and the root
// namespace's.
func (x *explainer) involveSecurity(ns string) {
	root := x.mesh.RootNamespace
	if root == "" {
		root = translate.DefaultRootNamespace
	}
	for _, n := range []string{ns, root} {
		for _, p := range x.snap.AuthorizationPoliciesIn(n) {
			x.involve(p.Key())
		}
		for _, p := range x.snap.MutualTLSPoliciesIn(n) {
			x.involve(p.Key())
		}
	}
}

// denial says how a destination refuses the request.
func (d *Destination) denial() string {
	switch {
	case d.MTLS != nil && !d.MTLS.Accepted:
		return "plaintext refused on a strict port"
	case d.Authorization != nil && d.Authorization.Evaluated && d.Authorization.Rule == authz.NoAllowMatch:
		return "no Allow rule of " + d.Authorization.Policy + " or any other matches"
	case d.Authorization != nil && d.Authorization.Evaluated:
		return "denied by " + d.Authorization.By
	case d.Note != "":
		return strings.SplitN(d.Note, ":", 2)[0]
	}
	return "refused"
}

// refusedStatus is what a caller gets from a destination that refuses.
func refusedStatus(opaque, grpc, plaintext bool) string {
	switch {
	case opaque:
		return "the connection is closed (the application is never dialled)"
	case plaintext && grpc:
		return "the caller gets gRPC UNAUTHENTICATED"
	case plaintext:
		return fmt.Sprintf("the caller gets %d saying the port needs mTLS", http.StatusForbidden)
	case grpc:
		return "the caller gets gRPC PERMISSION_DENIED"
	}
	return fmt.Sprintf("the caller gets %d (weft: access denied by authorization policy)", http.StatusForbidden)
}
