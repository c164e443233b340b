package explain

// Explanation is what the mesh does with one request, and why, in the
// order the request meets it. Its JSON form (weft explain -o json) is for
// scripts: fields may be added, never renamed or removed. Durations are Go
// durations ("500ms"), "" when unset.
type Explanation struct {
	Request Request `json:"request"`
	Caller  Caller  `json:"caller"`
	Routing Routing `json:"routing"`
	// Backends are the services the request may go to: a matched rule's
	// backendRefs, else the service itself.
	Backends []Backend `json:"backends"`
	// Destinations are the workloads behind the endpoints of the backends
	// that get a share of the requests.
	Destinations []Destination `json:"destinations"`
	Problems     []Problem     `json:"problems"`
	// Verdict sums the explanation up in one line.
	Verdict string `json:"verdict"`
}

// Request is the request explained, as the caller's application sends it.
type Request struct {
	// From is the calling workload, namespace/name.
	From string `json:"from"`
	// Service is the destination service, namespace/name, and Port its
	// port.
	Service string `json:"service"`
	Port    uint16 `json:"port"`
	// To is the name the proxies give the service port, "name.namespace:port".
	To string `json:"to"`
	// Protocol is the service port's: http1, http2, grpc, opaque, or
	// detect.
	Protocol string   `json:"protocol"`
	Method   string   `json:"method"`
	Path     string   `json:"path"`
	Host     string   `json:"host"`
	Headers  []string `json:"headers,omitempty"` // "name: value"
	// GRPC is "package.Service/Method" for a gRPC call.
	GRPC string `json:"grpc,omitempty"`
}

// Caller is the calling workload and what its proxy knows.
type Caller struct {
	Workload string `json:"workload"`
	// Identity is the SPIFFE ID of its proxy; "" when it is not meshed.
	Identity string `json:"identity"`
	Meshed   bool   `json:"meshed"`
	// Mode is its proxy's outbound mode: transparent or explicit.
	Mode string `json:"mode,omitempty"`
	// Discovery says how its proxy comes to know the service.
	Discovery string `json:"discovery"`
	// Addresses are where the application reaches the service: its
	// virtual addresses (transparent) or the proxy's local listener
	// (explicit).
	Addresses []string `json:"addresses,omitempty"`
	// Services are the services the proxy's config holds once it has
	// asked for the destination: it, and what its routes send or mirror
	// to.
	Services []string `json:"services,omitempty"`
}

// Routing is what the caller's proxy does with the request, in the order
// of its outbound path: route match, redirect, filters, rate limit, fault,
// backend choice, mirrors, timeouts, retries.
type Routing struct {
	// Outcome: "forward" (to the backends), "redirect" (the proxy
	// answers), "no-backend" (the proxy answers 500), "no-proxy" (the
	// caller is not meshed: nothing is routed) or "opaque" (TCP: routes do
	// not apply).
	Outcome string `json:"outcome"`
	// Decision says in words what decided the route.
	Decision string `json:"decision"`
	// Rules are the route rules attached to the service for this caller,
	// "namespace/name#index", in the order the proxy's config lists them.
	Rules []string `json:"rules,omitempty"`
	// Matched is the rule that matched; null when none did.
	Matched  *MatchedRule `json:"matched"`
	Redirect *Redirect    `json:"redirect,omitempty"`
	// RequestChanges are what the rule's filters changed in the request
	// (headers, host, path).
	RequestChanges []string `json:"request_changes,omitempty"`
	// ResponseHeaders is the rule's ResponseHeaderModifier.
	ResponseHeaders []string   `json:"response_headers,omitempty"`
	RateLimit       *RateLimit `json:"rate_limit,omitempty"`
	Fault           *Fault     `json:"fault,omitempty"`
	Mirrors         []Mirror   `json:"mirrors,omitempty"`
	Timeouts        Timeouts   `json:"timeouts"`
	Retry           *Retry     `json:"retry,omitempty"`
}

// MatchedRule is the route rule that won and the match that selected it.
type MatchedRule struct {
	Route string `json:"route"` // namespace/name
	Kind  string `json:"kind"`  // HTTPRoute or GRPCRoute
	Rule  int    `json:"rule"`  // index in the route
	// MatchIndex is the index of the match that won in the rule's
	// matches; -1 for a rule without matches (it takes every request).
	MatchIndex int    `json:"match_index"`
	Match      string `json:"match"`
}

// Redirect is a RequestRedirect the caller's proxy answers with.
type Redirect struct {
	Status   int    `json:"status"`
	Location string `json:"location"`
}

// RateLimit is a rule's token bucket.
type RateLimit struct {
	RequestsPerSecond            float64 `json:"requests_per_second"`
	Burst                        int     `json:"burst"`
	PerIdentityRequestsPerSecond float64 `json:"per_identity_requests_per_second,omitempty"`
	PerIdentityBurst             int     `json:"per_identity_burst,omitempty"`
}

// Fault is a rule's fault injection.
type Fault struct {
	DelayPercent    float64 `json:"delay_percent,omitempty"`
	Delay           string  `json:"delay,omitempty"`
	AbortPercent    float64 `json:"abort_percent,omitempty"`
	AbortHTTPStatus int     `json:"abort_http_status,omitempty"`
	AbortGRPCStatus int     `json:"abort_grpc_status,omitempty"`
}

// Mirror is a copy of a share of the requests sent to another service.
type Mirror struct {
	Service string  `json:"service"`
	Percent float64 `json:"percent"`
}

// Timeouts of a rule: Request bounds the whole request, retries included;
// Backend each try.
type Timeouts struct {
	Request string `json:"request"`
	Backend string `json:"backend"`
}

// Retry is a rule's retry policy, and what it means for this request.
type Retry struct {
	MaxRetries       int      `json:"max_retries"`
	Statuses         []string `json:"statuses,omitempty"`
	GRPCCodes        []int    `json:"grpc_codes,omitempty"`
	OnConnectFailure bool     `json:"on_connect_failure"`
	OnReset          bool     `json:"on_reset"`
	NonIdempotent    bool     `json:"retry_non_idempotent"`
	MaxBodyBytes     int      `json:"max_body_bytes"`
	BackoffBase      string   `json:"backoff_base"`
	BackoffMax       string   `json:"backoff_max"`
	PerTryTimeout    string   `json:"per_try_timeout"`
	// ThisRequest says which failures of this request are retried.
	ThisRequest string `json:"this_request"`
}

// Backend is a service the request may go to, with its share and the
// policies of the service (every retry to it draws from its budget; its
// circuit breaker admits each request).
type Backend struct {
	Service string `json:"service"` // name.namespace:port
	// Weight is the backendRef's weight; 0 when the service is not a
	// backendRef (no rule matched, or the rule names none).
	Weight uint32  `json:"weight"`
	Share  float64 `json:"share"`
	// RequestChanges are what the backendRef's own filters change.
	RequestChanges  []string       `json:"request_changes,omitempty"`
	ResponseHeaders []string       `json:"response_headers,omitempty"`
	LoadBalancer    string         `json:"load_balancer"`
	RetryBudget     RetryBudget    `json:"retry_budget"`
	CircuitBreaker  CircuitBreaker `json:"circuit_breaker"`
	Endpoints       []Endpoint     `json:"endpoints"`
	// Note says what happens when the service has no endpoints.
	Note string `json:"note,omitempty"`
}

// RetryBudget is a service's retry budget.
type RetryBudget struct {
	RetryRatio          float64 `json:"retry_ratio"`
	MinRetriesPerSecond int     `json:"min_retries_per_second"`
	TTL                 string  `json:"ttl"`
	// SetBy is the RetryBudget policy that set it, "" for the proxy's
	// default.
	SetBy string `json:"set_by"`
}

// CircuitBreaker is a service's circuit breaking.
type CircuitBreaker struct {
	MaxRequests    int    `json:"max_requests"`
	MaxPending     int    `json:"max_pending"`
	PendingTimeout string `json:"pending_timeout"`
	// Outlier is null when outlier detection is disabled.
	Outlier *Outlier `json:"outlier_detection"`
	// Adaptive is null when adaptive concurrency is off.
	Adaptive *Adaptive `json:"adaptive_concurrency"`
	// SetBy is the CircuitBreaker policy that set it, "" for the proxy's
	// default.
	SetBy string `json:"set_by"`
}

// Outlier is outlier detection's settings.
type Outlier struct {
	ConsecutiveFailures    int     `json:"consecutive_failures"`
	SuccessRateMinRequests int     `json:"success_rate_min_requests"`
	SuccessRateStdevFactor float64 `json:"success_rate_stdev_factor"`
	Interval               string  `json:"interval"`
	BaseEjectionTime       string  `json:"base_ejection_time"`
	MaxEjectionPercent     int     `json:"max_ejection_percent"`
}

// Adaptive is adaptive concurrency's bounds.
type Adaptive struct {
	InitialLimit int `json:"initial_limit"`
	MinLimit     int `json:"min_limit"`
	MaxLimit     int `json:"max_limit"`
}

// Endpoint is one endpoint of a backend and how the caller's proxy reaches
// it.
type Endpoint struct {
	Address string `json:"address"`
	// ProxyAddress is the peer proxy's inbound listener (explicit mode).
	ProxyAddress string `json:"proxy_address,omitempty"`
	// Workload is namespace/name, "" when no Workload has the address.
	Workload string `json:"workload"`
	Identity string `json:"identity"`
	Zone     string `json:"zone"`
	Weight   uint32 `json:"weight"`
	// Hop is "mtls" (meshed: the peer must present Identity) or
	// "plaintext".
	Hop string `json:"hop"`
}

// Destination is what one destination workload's proxy does with the
// request on the port it arrives at.
type Destination struct {
	Workload string `json:"workload"` // namespace/name; "" when unknown
	Backend  string `json:"backend"`  // the backend service it is reached through
	Address  string `json:"address"`
	Port     uint16 `json:"port"`
	Identity string `json:"identity"`
	Meshed   bool   `json:"meshed"`
	// Allowed is whether the request reaches the application.
	Allowed bool `json:"allowed"`
	// Note explains a destination without an inbound proxy, or a port the
	// proxy skips.
	Note          string         `json:"note,omitempty"`
	MTLS          *PortMTLS      `json:"mtls,omitempty"`
	Authorization *Authorization `json:"authorization,omitempty"`
}

// PortMTLS is a destination port's mTLS mode and what the hop is.
type PortMTLS struct {
	Mode string `json:"mode"` // strict or permissive
	// Policy is the MutualTLSPolicy that set it (namespace/name); "" for
	// the control plane's default, permissive.
	Policy string `json:"policy"`
	// PortEntry: the mode is the policy's spec.ports entry for the port.
	PortEntry bool `json:"port_entry,omitempty"`
	// Hop is "mtls" (from the caller's proxy) or "plaintext".
	Hop      string `json:"hop"`
	Accepted bool   `json:"accepted"`
}

// Authorization is the inbound authorization decision.
type Authorization struct {
	// Evaluated is false when the request was refused before (plaintext
	// on a strict port).
	Evaluated bool `json:"evaluated"`
	Allowed   bool `json:"allowed"`
	// Policy and Rule name what decided (authz.Decider): a policy
	// namespace/name and rule; "default" and the default policy; or the
	// first Allow policy and "no-allow-match" for an exhaustive allow
	// list.
	Policy string `json:"policy"`
	Rule   string `json:"rule"`
	// By is how metrics and logs name the decider.
	By string `json:"by"`
	// DefaultPolicy is the workload's default inbound policy, set by the
	// workload's or its namespace's annotation, or the mesh's setting.
	DefaultPolicy string `json:"default_policy"`
	DefaultSetBy  string `json:"default_set_by"`
	// Policies are the authorization policies that apply to the port.
	Policies []string `json:"policies,omitempty"`
	// WouldDeny is set when dry-run policies, enforced, would deny the
	// request; DryRunPolicy and DryRunRule say which.
	WouldDeny    bool   `json:"would_deny"`
	DryRunPolicy string `json:"dry_run_policy,omitempty"`
	DryRunRule   string `json:"dry_run_rule,omitempty"`
}

// Problem is something wrong the control plane reports: a document of the
// directory that is ignored ("resources"), or a problem the translation
// works around ("control-plane").
type Problem struct {
	Source string `json:"source"`
	// Where is the file and line (resources) or the object (control
	// plane).
	Where   string `json:"where"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Problem sources.
const (
	SourceResources    = "resources"
	SourceControlPlane = "control-plane"
)
