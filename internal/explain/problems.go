package explain

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/internal/control/translate"
)

// addControlPlaneProblem records a problem the translation worked around.
func (x *explainer) addControlPlaneProblem(p translate.Problem) {
	x.problems[SourceControlPlane+"\x00"+p.String()] = Problem{Source: SourceControlPlane, Where: p.Object, Field: p.Field, Message: p.Message}
}

// problemsStep gathers the problems: every document of the directory that
// is ignored (they may hold what the request needs), and what the control
// plane reports about the objects involved, as `weft control` logs them.
func (x *explainer) problemsStep() {
	for _, p := range translate.CheckMesh(x.snap, x.mesh) {
		// Proxy configs' own problems are recorded as they are rendered;
		// these are the model's, whichever proxy they reach.
		if x.involved[p.Object] {
			x.addControlPlaneProblem(p)
		}
	}
	// The file source reports some problems the translation reports too
	// (a backendRef to nothing): keep the one with the file and line.
	fromFiles := map[string]bool{}
	for _, p := range x.m.Problems {
		fromFiles[p.Message] = true
	}
	var cp []Problem
	for _, p := range x.problems {
		if !fromFiles[p.Message] {
			cp = append(cp, p)
		}
	}
	slices.SortFunc(cp, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Where, b.Where), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message))
	})
	x.out.Problems = []Problem{}
	for _, p := range x.m.Problems {
		where := p.File
		if p.Line > 0 {
			where += ":" + strconv.Itoa(p.Line)
		}
		x.out.Problems = append(x.out.Problems, Problem{Source: SourceResources, Where: where, Field: p.Field, Message: p.Message})
	}
	x.out.Problems = append(x.out.Problems, cp...)
}

// verdict sums the explanation up.
func (x *explainer) verdict() {
	r := &x.out.Routing
	grpc := x.in.grpc != ""
	switch r.Outcome {
	case "redirect":
		x.out.Verdict = fmt.Sprintf("redirected: the caller's proxy answers %d with Location %s; nothing is forwarded", r.Redirect.Status, r.Redirect.Location)
		return
	case "no-backend":
		x.out.Verdict = fmt.Sprintf("not forwarded: every backendRef of %s rule %d weighs 0, so the caller's proxy answers 500 (gRPC UNAVAILABLE)", r.Matched.Route, r.Matched.Rule)
		return
	}
	var to []string
	for _, b := range x.out.Backends {
		if b.Share > 0 {
			to = append(to, percent(b.Share)+" to "+b.Service)
		}
	}
	var allowed, denied []string
	for _, d := range x.out.Destinations {
		name := cmp.Or(d.Workload, d.Address)
		if d.Allowed {
			allowed = append(allowed, name)
		} else {
			denied = append(denied, fmt.Sprintf("%s (%s)", name, d.denial()))
		}
	}
	allowed, denied = slices.Compact(allowed), slices.Compact(denied)
	opaque := r.Outcome == "opaque"
	switch {
	case len(x.out.Destinations) == 0:
		x.out.Verdict = fmt.Sprintf("not delivered: %s, which has no endpoint; the caller's proxy answers 503 (gRPC UNAVAILABLE)", strings.Join(to, ", "))
	case len(denied) == 0:
		x.out.Verdict = fmt.Sprintf("allowed: %s; it reaches %s", strings.Join(to, ", "), strings.Join(allowed, ", "))
	case len(allowed) == 0:
		plaintext := x.out.Destinations[0].MTLS != nil && !x.out.Destinations[0].MTLS.Accepted
		x.out.Verdict = fmt.Sprintf("denied: %s; refused at %s: %s", strings.Join(to, ", "), strings.Join(denied, ", "), refusedStatus(opaque, grpc, plaintext))
	default:
		x.out.Verdict = fmt.Sprintf("partly denied: %s; allowed at %s; refused at %s", strings.Join(to, ", "), strings.Join(allowed, ", "), strings.Join(denied, ", "))
	}
	if n := len(x.out.Problems); n > 0 {
		x.out.Verdict += fmt.Sprintf(" (%d problems below)", n)
	}
}
