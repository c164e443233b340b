package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// applied is a policy that applies to a workload, and where.
type applied[P any] struct {
	p     P
	scope scope
}

// authorization returns the authorization of workload w's inbound
// listener: its default policy and the authorization policies that apply
// to it, nil when that is the proxy's default (allow-all, no policy).
func (b *builder) authorization(w *model.Workload, backs backing) *weftv1.Authorization {
	out := &weftv1.Authorization{DefaultPolicy: b.defaultInbound(w)}
	var policies []applied[*model.AuthorizationPolicy]
	root := b.mesh.root()
	if w.Namespace != root {
		for _, p := range b.snap.AuthorizationPoliciesIn(root) {
			if len(p.TargetRefs) == 0 {
				policies = append(policies, applied[*model.AuthorizationPolicy]{p, scope{all: true}})
			}
		}
	}
	for _, p := range b.snap.AuthorizationPoliciesIn(w.Namespace) {
		sc := scope{all: true}
		if len(p.TargetRefs) > 0 {
			sc = b.targetScope(p.Namespace, p.TargetRefs, w, backs)
		}
		if !sc.empty() {
			policies = append(policies, applied[*model.AuthorizationPolicy]{p, sc})
		}
	}
	slices.SortFunc(policies, func(x, y applied[*model.AuthorizationPolicy]) int {
		return cmp.Or(cmp.Compare(x.p.Namespace, y.p.Namespace), cmp.Compare(x.p.Name, y.p.Name))
	})
	for _, a := range policies {
		out.Policies = append(out.Policies, b.authorizationPolicy(a.p, a.scope, w)...)
	}
	if len(out.Policies) == 0 && out.DefaultPolicy == model.DefaultInboundAllowAll {
		return nil
	}
	return out
}

// authorizationPolicy translates one policy for the ports sc of workload
// w. The proxy's policies carry their ports, its rules do not: the rules
// are grouped by the ports they apply to (the scope narrowed to their
// to.ports), one proxy policy per group, each named namespace/name, and
// rules keep their names. A policy the translation refuses fails closed:
// enforced, it becomes a Deny of every request on its ports; in dry run,
// it is left out.
func (b *builder) authorizationPolicy(p *model.AuthorizationPolicy, sc scope, w *model.Workload) []*weftv1.AuthorizationPolicy {
	name := p.Namespace + "/" + p.Name
	newPolicy := func(ports scope) *weftv1.AuthorizationPolicy {
		return &weftv1.AuthorizationPolicy{Name: name, Action: string(p.Action), DryRun: p.DryRun, Ports: ports.proxyPorts()}
	}
	if !b.checkAuthorization(p) {
		if p.DryRun {
			return nil
		}
		return []*weftv1.AuthorizationPolicy{{Name: name, Action: string(model.AuthorizationDeny), Ports: sc.proxyPorts()}}
	}
	if len(p.Rules) == 0 {
		return []*weftv1.AuthorizationPolicy{newPolicy(sc)}
	}
	var out []*weftv1.AuthorizationPolicy
	groups := map[string]*weftv1.AuthorizationPolicy{}
	for i, r := range p.Rules {
		ports := sc.narrow(r.Ports)
		if ports.empty() {
			b.problem(p.Key().String(), fmt.Sprintf("rules[%d].to.ports", i),
				"none of ports %v is among the ports the policy targets on workload %s (%s); the rule never applies there", r.Ports, w.Ref(), sc)
			continue
		}
		key := ports.String()
		g := groups[key]
		if g == nil {
			g = newPolicy(ports)
			groups[key] = g
			out = append(out, g)
		}
		g.Rules = append(g.Rules, &weftv1.AuthorizationRule{Name: r.RuleName(i), From: cloneMsg(r.From), To: cloneMsg(r.To)})
	}
	return out
}

// checkAuthorization reports, once, what makes a policy invalid
// (ValidateAuthorization), and says whether it is valid.
func (b *builder) checkAuthorization(p *model.AuthorizationPolicy) bool {
	obj := p.Key().String()
	err, done := b.checked[obj]
	if done {
		return err == nil
	}
	consequence := "the policy denies every request on the ports it applies to until it is fixed"
	if p.DryRun {
		consequence = "the dry-run policy is left out"
	}
	fe := ValidateAuthorization(p)
	for _, e := range fe {
		b.problem(obj, e.Field, "%s; %s", e.Message, consequence)
	}
	if len(fe) > 0 {
		err = fmt.Errorf("%d problems", len(fe))
	}
	b.checked[obj] = err
	return err == nil
}

// ValidateAuthorization checks an authorization policy by the model's rules
// (model.AuthorizationPolicy.Validate) and, if it passes them, by the
// proxy's own, its fields named as in the resource's spec. Sources use it
// to refuse what the translation would.
func ValidateAuthorization(p *model.AuthorizationPolicy) []model.FieldError {
	if fe := p.Validate(); len(fe) > 0 {
		return fe
	}
	whole := &weftv1.AuthorizationPolicy{Name: p.Namespace + "/" + p.Name, Action: string(p.Action), DryRun: p.DryRun}
	for i, r := range p.Rules {
		whole.Rules = append(whole.Rules, &weftv1.AuthorizationRule{Name: r.RuleName(i), From: r.From, To: r.To})
	}
	err := validateInbound(&weftv1.Inbound{Authorization: &weftv1.Authorization{Policies: []*weftv1.AuthorizationPolicy{whole}}})
	if err == nil {
		return nil
	}
	var out []model.FieldError
	for _, line := range errorLines(err) {
		field, msg, ok := strings.Cut(line, ": ")
		if !ok {
			field, msg = "", line
		}
		field = strings.TrimPrefix(field, "inbound.authorization.policies[0].")
		out = append(out, model.FieldError{Field: strings.ReplaceAll(field, "trust_domains", "trustDomains"), Message: msg})
	}
	return out
}
