package authz

import (
	"encoding/json"
	"slices"
)

// Description is what an Authorizer was compiled to, for config dumps and
// golden files.
type Description struct {
	DefaultPolicy string              `json:"default_policy"`
	Policies      []PolicyDescription `json:"policies,omitempty"`
}

// PolicyDescription describes one compiled policy.
type PolicyDescription struct {
	Name   string            `json:"name"`
	Action string            `json:"action"`
	DryRun bool              `json:"dry_run,omitempty"`
	Ports  []uint16          `json:"ports,omitempty"`
	Rules  []RuleDescription `json:"rules,omitempty"`
}

// RuleDescription describes one compiled rule. Decider is how the rule is
// named in metrics and logs; TCP says what it does to an opaque TCP
// connection whose caller matches: "checked" (no HTTP conditions),
// "never matches" (an Allow rule with HTTP conditions) or "matches" (a
// Deny rule with HTTP conditions).
type RuleDescription struct {
	Decider        string   `json:"decider"`
	Identities     []string `json:"identities,omitempty"`
	Namespaces     []string `json:"namespaces,omitempty"`
	TrustDomains   []string `json:"trust_domains,omitempty"`
	Authentication string   `json:"authentication,omitempty"`
	Methods        []string `json:"methods,omitempty"`
	Paths          []string `json:"paths,omitempty"`   // "PathPrefix /api"
	Headers        []string `json:"headers,omitempty"` // "x-env Exact prod"
	GRPC           []string `json:"grpc,omitempty"`    // "Exact pkg.Svc/Get", "*" for any
	TCP            string   `json:"tcp"`
}

// Describe returns what a was compiled to, in slices of its own.
func (a *Authorizer) Describe() Description {
	if a == nil {
		return Description{DefaultPolicy: AllowAll}
	}
	d := Description{DefaultPolicy: a.defaultPolicy}
	for _, p := range a.policies {
		pd := PolicyDescription{Name: p.name, Action: p.action.String(), DryRun: p.dryRun, Ports: slices.Clone(p.ports)}
		for _, r := range p.rules {
			rd := RuleDescription{
				Decider:        r.by.String(),
				Identities:     slices.Clone(r.src.identities),
				Namespaces:     slices.Clone(r.src.namespaces),
				TrustDomains:   slices.Clone(r.src.trustDomains),
				Authentication: r.src.auth,
				Methods:        slices.Clone(r.dst.methods),
				TCP:            "checked",
			}
			for _, pm := range r.dst.paths {
				rd.Paths = append(rd.Paths, pm.Type.String()+" "+pm.Value)
			}
			for _, h := range r.dst.headers {
				rd.Headers = append(rd.Headers, h.Name+" "+h.Type.String()+" "+h.Value)
			}
			for _, g := range r.dst.grpc {
				rd.GRPC = append(rd.GRPC, g.typ.String()+" "+orAny(g.service)+"/"+orAny(g.method))
			}
			if r.http {
				rd.TCP = "never matches"
				if p.action == Deny {
					rd.TCP = "matches"
				}
			}
			pd.Rules = append(pd.Rules, rd)
		}
		d.Policies = append(d.Policies, pd)
	}
	return d
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// MarshalJSON writes Describe().
func (a *Authorizer) MarshalJSON() ([]byte, error) { return json.Marshal(a.Describe()) }
