package translate

import (
	"fmt"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// UnresolvedFilterStatus is what a route rule answers every request with
// while one of its ExtensionRef filters names a RateLimit or a
// FaultInjection that does not exist: Gateway API says a filter that
// cannot be resolved is not skipped, and the request gets a 500.
const UnresolvedFilterStatus = 500

// extensionFilters resolves the RateLimit and FaultInjection that rule i
// of a route of namespace ns references into rr. While one names nothing,
// the rule aborts every request with UnresolvedFilterStatus (a gRPC
// request gets the status gRPC clients map it to), and it is reported.
func (b *builder) extensionFilters(obj, ns string, i int, rule model.RouteRule, rr *weftv1.RouteRule) {
	unresolved := false
	missing := func(kind model.Kind, ref *model.FilterRef) {
		unresolved = true
		b.problem(obj, fmt.Sprintf("rules[%d].filters[%d]", i, ref.Filter),
			"%s %s/%s does not exist; the rule answers every request with %d until it does, or until the filter is removed",
			kind, ns, ref.Name, UnresolvedFilterStatus)
	}
	if ref := rule.RateLimitRef; ref != nil {
		if p := b.snap.RateLimits[model.ObjectRef{Namespace: ns, Name: ref.Name}]; p != nil {
			if p.Limit == nil {
				b.problem(obj, fmt.Sprintf("rules[%d].filters[%d]", i, ref.Filter),
					"RateLimit %s/%s sets no requestsPerSecond: a route rule's filter applies only the total, so the rule is not limited", ns, ref.Name)
			}
			rr.RateLimit = cloneMsg(p.Limit)
		} else {
			missing(model.KindRateLimit, ref)
		}
	}
	if ref := rule.FaultRef; ref != nil {
		if p := b.snap.FaultInjections[model.ObjectRef{Namespace: ns, Name: ref.Name}]; p != nil {
			rr.Fault = cloneMsg(p.Fault)
		} else {
			missing(model.KindFault, ref)
		}
	}
	if unresolved {
		rr.RateLimit = nil
		rr.Fault = &weftv1.Fault{AbortPercent: 100, AbortHttpStatus: UnresolvedFilterStatus}
	}
}
