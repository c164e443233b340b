// Package explain answers "what will the mesh do with this request, and
// why?" from the same code the mesh runs, for `weft explain`.
//
// Load reads a universal-mode resource directory once, as `weft control
// --dir` reads it (internal/control/source/file), into a model snapshot.
// Explain then renders the configs of the proxies involved with
// internal/control/translate, the pure function the control plane serves
// them with, compiles them with internal/proxy/config.Compile, as each
// proxy does before it swaps a config in, and evaluates the request with
// the proxy's own packages:
//
//   - the caller's proxy: route.Table.Match (which rule and match win),
//     Selected.ApplyRequestFilters and Backend.ApplyRequestHeaders (what the
//     filters change, or the redirect), the backends' weights
//     (Rule.BackendShares, PickBackend's probabilities), and the compiled
//     rule policies (timeouts, retry, rate limit, fault, mirrors) and
//     service policies (retry budget, circuit breaker, load balancer);
//   - each endpoint of the chosen backends: mTLS (the endpoint's expected
//     identity) or plaintext (not meshed), as config.Endpoint says;
//   - each destination workload's proxy: Inbound.PlaintextRefused (the
//     port's mTLS mode; translate.WorkloadPortMTLS names the policy that set
//     it) and authz.Authorizer.Evaluate (the decision, the deciding policy
//     and rule, or the default policy, and what dry-run policies would
//     deny).
//
// Nothing here decides anything itself: a result is only ever what those
// packages return, put into words. The problems translate.CheckMesh and the
// proxies' configs report for the objects involved, and every problem of
// the directory's files, close the explanation.
//
// What it cannot know: which services a caller's proxy has already asked
// for (it explains the config the proxy gets once it asks for the
// destination), the running state (ejected endpoints, budgets spent, rate
// limits reached, random draws: weights and percentages are shown as
// shares), and what an application does with the request.
package explain
