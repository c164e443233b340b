// Package authz decides whether an inbound request (HTTP, gRPC) or opaque
// TCP connection may reach the local application, from the
// weft.v1.Authorization section of the proxy's config.
//
// Compile validates an Authorization once and returns an immutable
// Authorizer, safe for concurrent use; every problem is reported at once in
// a *CompileError, each as a *FieldError naming the field relative to the
// Authorization (e.g. "policies[0].rules[1].to.paths[0].value") and what to
// do. Regular expressions are compiled once; Evaluate does not allocate for
// ordinary requests (see Cost).
//
// # Evaluation
//
// Exactly as the .proto says: a matching rule of an enforced Deny policy
// denies; otherwise a matching rule of an enforced Allow policy allows;
// otherwise, when an enforced Allow policy applies to the port, the request
// is denied (an allow list is exhaustive); otherwise the default policy
// decides:
//
//   - allow-all (the default): everything is allowed;
//   - deny-all: everything is denied;
//   - allow-same-namespace: a caller whose SPIFFE ID is in this workload's
//     namespace (/ns/<namespace>/...) of this workload's trust domain;
//   - allow-authenticated: any mTLS peer (the handshake already verified it
//     against the trust bundle, so its trust domain is a trusted one).
//
// A policy applies to a request when its ports are empty or contain the
// request's destination port; it matches when any of its rules does, and a
// policy without rules matches every request on its ports. A rule matches
// when every condition set in it matches; the entries of a list are
// alternatives, except headers, which must all match.
//
// Dry-run policies take no part in the decision. When the decision is
// allow, the policies are evaluated again with the dry-run ones as if
// enforced; if that denies, Decision.WouldDeny is set with what would have
// denied. A request is never denied because of a dry-run policy.
//
// # What decided
//
// Decision.By (and Decision.DryRun) name what decided, as label values for
// metrics and logs that are bounded by the config, never by the request:
//
//   - a rule: Policy is the policy's name, Rule the rule's name ("rule-<i>"
//     for an unnamed rule, "" for a policy without rules); String() is
//     "default/api-allow:frontend";
//   - an exhaustive allow list: Policy is the first Allow policy (in config
//     order) that applies to the port, Rule is NoAllowMatch; String() is
//     "no allow rule matched";
//   - the default policy: Policy is DefaultPolicyName ("default"), Rule the
//     default policy; String() is "default:deny-all".
//
// # Conditions
//
//   - from.identities: exact SPIFFE IDs; from.namespaces: the namespace of
//     a caller's SPIFFE ID, spiffe://<td>/ns/<namespace>/...;
//     from.trust_domains: its trust domain; from.authentication:
//     "authenticated" (an mTLS peer) or "unauthenticated" (a plaintext
//     client). A plaintext client has no identity, namespace or trust
//     domain: those conditions never match it.
//   - to.methods: the request method, compared exactly (upper case).
//   - to.paths and to.headers: matched with the semantics of package route
//     (Gateway API HTTPRoute): Exact, PathPrefix element by element ("/api"
//     matches "/api" and "/api/v1", not "/apis"), RegularExpression
//     anchored at both ends (RE2); header names are case-insensitive, a
//     repeated header is matched as its values joined with ",", and "Host"
//     is the request's authority. Header presence is a RegularExpression
//     ".*". The values are validated by route as well, with the same
//     messages.
//   - Paths are compared after removing dot segments and merging repeated
//     slashes of the decoded path, so "/public/../admin", "/public/%2e%2e/admin"
//     and "//admin" are all matched as "/admin": an allow on "/public"
//     cannot be stretched, nor a deny on "/admin" side-stepped, by a path the
//     application normalises. The request itself is forwarded unchanged.
//   - to.grpc: the service and method of the request path
//     "/<service>/<method>", Exact or RegularExpression; an empty service or
//     method matches any. The content-type is not consulted, so a Deny on a
//     gRPC method cannot be side-stepped by calling it with another protocol
//     on the same path (gRPC-Web, Connect).
//
// # Opaque TCP
//
// For an opaque TCP connection only the port and the caller are known. A
// rule with any to.* condition (HTTP conditions) never matches a TCP
// connection in an Allow policy, and always matches it, as far as those
// conditions go, in a Deny policy: the connection is denied when the rule's
// from conditions match (fail closed, as Istio does). So a Deny of
// "/admin" from namespace batch closes every opaque connection from batch
// on the policy's ports, and an Allow of "GET /" admits no opaque
// connection. A connection is authorized once, when it opens.
//
// # Cost
//
// Evaluate walks the policies that apply to the port in config order, and
// walks them again only when a dry-run policy exists and the request was
// allowed. It does not allocate unless a header regular expression has to
// be matched against a repeated header or the path has to be normalised (it
// contains "//", "." or ".." segments, or does not start with "/").
package authz
