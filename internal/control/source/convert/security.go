package convert

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
)

func (c *conv) namespace(n *corev1.Namespace) *model.Namespace {
	if n.Name == "" {
		c.fail("metadata.name", "a name is required")
	} else if errs := validation.IsDNS1123Label(n.Name); len(errs) > 0 {
		c.fail("metadata.name", "%q is not a valid namespace name: %s", n.Name, strings.Join(errs, "; "))
	}
	if n.Namespace != "" {
		c.warn("metadata.namespace", "a Namespace is in no namespace; this is ignored")
	}
	c.labels("metadata.labels", n.Labels)
	return &model.Namespace{Name: n.Name, Labels: n.Labels, DefaultInboundPolicy: c.defaultInbound(&n.ObjectMeta, "the mesh's default applies")}
}

// defaultInbound returns the default inbound policy a resource's
// annotation sets; a value that is not one is reported, and the level
// above applies.
func (c *conv) defaultInbound(m *metav1.ObjectMeta, above string) string {
	v, ok := m.Annotations[model.AnnotationDefaultInboundPolicy]
	if !ok || slices.Contains(model.DefaultInboundPolicies(), v) {
		return v
	}
	all := model.DefaultInboundPolicies()
	c.warn(MapPath("metadata.annotations", model.AnnotationDefaultInboundPolicy), "%q is not a default inbound policy; use %s or %s; %s",
		v, strings.Join(all[:len(all)-1], ", "), all[len(all)-1], above)
	return ""
}

// securityTargets converts the targetRefs of an authorization or mTLS
// policy: Services (whole, or one port by sectionName) and Workloads of
// the policy's namespace.
func (c *conv) securityTargets(ns string, refs []policyapi.TargetReference) []model.PolicyTargetRef {
	var out []model.PolicyTargetRef
	seen := map[model.PolicyTargetRef]int{}
	for i, t := range refs {
		f := fmt.Sprintf("spec.targetRefs[%d]", i)
		// An invalid target keeps its place, so that the model's
		// verdict names the right index.
		ref := model.PolicyTargetRef{Kind: model.PolicyTargetKind(t.Kind), Name: t.Name}
		valid := t.Group == "" && t.Kind == "Service" || t.Group == "weft.dev" && t.Kind == "Workload"
		if !valid {
			field := f + ".kind"
			if t.Kind == "Service" || t.Kind == "Workload" {
				field = f + ".group"
			}
			c.fail(field, "a policy targets a Service (group: \"\", kind: Service) or a Workload (group: weft.dev, kind: Workload), not %s",
				groupKind(t.Group, cmp.Or(t.Kind, "(no kind)")))
		}
		if t.SectionName != nil {
			ref.SectionName = c.sectionName(f+".sectionName", ref.Kind, *t.SectionName)
		}
		if j, dup := seen[ref]; dup {
			c.fail(f, "the same target as targetRefs[%d]", j)
		}
		seen[ref] = i
		out = append(out, ref)
		if valid {
			c.refs = append(c.refs, Reference{Field: f, Role: RoleSecurity, Target: ref,
				To: model.ServicePortRef{ServiceRef: model.ServiceRef{Namespace: ns, Name: t.Name}}})
		}
	}
	return out
}

// sectionName checks a Service target's sectionName: a port's name or
// number.
func (c *conv) sectionName(f string, kind model.PolicyTargetKind, s intstr.IntOrString) string {
	if kind != model.TargetService {
		c.fail(f, "sectionName applies to a Service target only; to limit a policy to some of a Workload's ports, use rules[].to.ports (AuthorizationPolicy) or spec.ports (MutualTLSPolicy)")
		return ""
	}
	if s.Type == intstr.Int {
		return strconv.Itoa(int(c.port(f, s.IntVal)))
	}
	if n, err := strconv.ParseInt(s.StrVal, 10, 32); err == nil {
		return strconv.Itoa(int(c.port(f, int32(n))))
	}
	if errs := validation.IsValidPortName(s.StrVal); len(errs) > 0 {
		c.fail(f, "%q is neither a port number nor a valid port name: %s", s.StrVal, strings.Join(errs, "; "))
	}
	return s.StrVal
}

func (c *conv) authorizationPolicy(p *policyapi.AuthorizationPolicy) *model.AuthorizationPolicy {
	ns, name := c.meta(&p.ObjectMeta, validation.IsDNS1123Subdomain)
	s := p.Spec
	out := &model.AuthorizationPolicy{Namespace: ns, Name: name, Created: c.createdAt(&p.ObjectMeta),
		TargetRefs: c.securityTargets(ns, s.TargetRefs), Action: model.AuthorizationAction(s.Action)}
	switch s.Mode {
	case "", "Enforce":
	case "DryRun":
		out.DryRun = true
	default:
		c.fail("spec.mode", "unknown mode %q; use Enforce (the default) or DryRun", s.Mode)
	}
	for i, r := range s.Rules {
		f := fmt.Sprintf("spec.rules[%d]", i)
		rule := model.AuthorizationRule{Name: r.Name}
		if from := r.From; from != nil {
			rule.From = &weftv1.AuthorizationSource{Identities: from.Identities, Namespaces: from.Namespaces, TrustDomains: from.TrustDomains}
			switch from.Authentication {
			case "":
			case "Authenticated", "Unauthenticated":
				rule.From.Authentication = strings.ToLower(string(from.Authentication))
			default:
				c.fail(f+".from.authentication", "unknown authentication %q; use Authenticated or Unauthenticated, or leave it out to match any client", from.Authentication)
			}
		}
		if to := r.To; to != nil {
			rule.To = &weftv1.AuthorizationTarget{Methods: to.Methods}
			for j, port := range to.Ports {
				rule.Ports = append(rule.Ports, c.port(fmt.Sprintf("%s.to.ports[%d]", f, j), port))
			}
			for _, pm := range to.Paths {
				rule.To.Paths = append(rule.To.Paths, &weftv1.PathMatch{Type: cmp.Or(string(pm.Type), "PathPrefix"), Value: pm.Value})
			}
			for _, h := range to.Headers {
				rule.To.Headers = append(rule.To.Headers, &weftv1.ValueMatch{Type: cmp.Or(string(h.Type), "Exact"), Name: h.Name, Value: h.Value})
			}
			for _, g := range to.GRPC {
				rule.To.Grpc = append(rule.To.Grpc, &weftv1.GRPCMethodMatch{Type: cmp.Or(string(g.Type), "Exact"), Service: g.Service, Method: g.Method})
			}
			if len(to.Methods)+len(to.Paths)+len(to.Headers)+len(to.GRPC) == 0 {
				rule.To = nil // ports only: no request condition
			}
		}
		out.Rules = append(out.Rules, rule)
	}
	c.modelErrors(translate.ValidateAuthorization(out))
	return out
}

func (c *conv) mutualTLSPolicy(p *policyapi.MutualTLSPolicy) *model.MutualTLSPolicy {
	ns, name := c.meta(&p.ObjectMeta, validation.IsDNS1123Subdomain)
	s := p.Spec
	out := &model.MutualTLSPolicy{Namespace: ns, Name: name, Created: c.createdAt(&p.ObjectMeta),
		TargetRefs: c.securityTargets(ns, s.TargetRefs), Mode: model.MTLSMode(s.Mode)}
	for i, pm := range s.Ports {
		out.Ports = append(out.Ports, model.PortMTLS{Port: c.port(fmt.Sprintf("spec.ports[%d].port", i), pm.Port), Mode: model.MTLSMode(pm.Mode)})
	}
	c.modelErrors(out.Validate())
	return out
}

// modelErrors fails the document for the model's verdict on its spec,
// except on fields already reported.
func (c *conv) modelErrors(errs []model.FieldError) {
	for _, e := range errs {
		f := "spec." + e.Field
		if !slices.ContainsFunc(c.problems, func(p Problem) bool { return p.Field == f }) {
			c.fail(f, "%s", e.Message)
		}
	}
}
