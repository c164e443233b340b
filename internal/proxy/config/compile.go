package config

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/types/known/durationpb"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/authz"
	"github.com/weft-mesh/weft/internal/proxy/breaker"
	"github.com/weft-mesh/weft/internal/proxy/ratelimit"
	"github.com/weft-mesh/weft/internal/proxy/retry"
	"github.com/weft-mesh/weft/internal/proxy/route"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

// Protocol is a protocol override of a port, listener or service.
type Protocol string

// The protocols a port may be pinned to. Detect (the empty string) sniffs the
// first bytes of each connection.
const (
	Detect Protocol = ""
	Opaque Protocol = "opaque"
	HTTP1  Protocol = "http1"
	HTTP2  Protocol = "http2"
	GRPC   Protocol = "grpc"
)

// Load-balancing policies, as written in the config.
const (
	PolicyP2CEWMA      = "p2c-ewma"
	PolicyRoundRobin   = "round-robin"
	PolicyLeastRequest = "least-request"
	PolicyRingHash     = "ring-hash"
)

// Defaults applied by Compile where the config is silent.
const (
	DefaultAdminAddress     = "0.0.0.0:4191"
	DefaultInboundAddress   = "0.0.0.0:4143"
	DefaultAppHost          = "127.0.0.1"
	DefaultDetectTimeout    = 300 * time.Millisecond
	DefaultConnectTimeout   = 5 * time.Second
	DefaultHeaderReadTimout = 10 * time.Second
	DefaultHTTPIdleTimeout  = 90 * time.Second
	DefaultTCPIdleTimeout   = time.Hour
	DefaultDrainTimeout     = 30 * time.Second
	DefaultMaxHeaderBytes   = 64 << 10
	DefaultMaxConnections   = 1024
	DefaultMaxIdle          = 16
	DefaultPoolIdleTimeout  = 90 * time.Second
)

// Compiled is a validated config with defaults applied: what the running proxy
// reads. It is immutable once built.
type Compiled struct {
	Source         *weftv1.ProxyConfig
	Version        string
	TLS            *TLSFiles // nil: no mTLS material configured
	AdminAddress   string
	Inbound        *Inbound // nil: no inbound listener
	Outbound       Outbound
	Services       map[string]*Service
	VIPs           map[netip.AddrPort]*Service
	DetectTimeout  time.Duration
	OpaquePorts    []uint16
	Timeouts       Timeouts
	AccessLog      bool
	MaxHeaderBytes int
}

// TLSFiles names the proxy's certificate material.
type TLSFiles struct {
	CertFile, KeyFile, TrustBundleFile string
	// Issued: the control plane issues the certificate; no files.
	Issued bool
}

// Files returns the file names as tlsid takes them.
func (t *TLSFiles) Files() tlsid.Files {
	return tlsid.Files{CertFile: t.CertFile, KeyFile: t.KeyFile, TrustBundleFile: t.TrustBundleFile}
}

// MTLSMode is a port's mTLS setting.
type MTLSMode string

// The mTLS modes of an inbound port. MTLSDefault leaves it to
// inbound.require_mtls.
const (
	MTLSDefault    MTLSMode = ""
	MTLSStrict     MTLSMode = "strict"
	MTLSPermissive MTLSMode = "permissive"
)

// Inbound is the resolved inbound listener.
type Inbound struct {
	Address     string
	AppHost     string
	Ports       map[uint16]InboundPort
	RequireMTLS bool
	// Authz decides which requests and connections reach the application;
	// never nil once compiled (no authorization section: allow-all).
	Authz *authz.Authorizer
	// ProxyPorts are the proxy's own listening ports. When the application
	// host is loopback they are never forwarded to: a peer must not reach
	// the admin server (whose loopback-only endpoints would trust it) or
	// loop back into the proxy.
	ProxyPorts map[uint16]bool
}

// Port returns the settings of an inbound port; unlisted ports forward to the
// same application port with detection, and the proxy's own ports are
// skipped.
func (in *Inbound) Port(p uint16) InboundPort {
	if in.ProxyPorts[p] {
		return InboundPort{Port: p, AppPort: p, Skip: true}
	}
	if ip, ok := in.Ports[p]; ok {
		return ip
	}
	return InboundPort{Port: p, AppPort: p}
}

// PlaintextRefused reports whether a plaintext client is refused on port p,
// and by which setting: the port's own mtls mode wins over require_mtls,
// both ways. Port 0 (unknown) follows require_mtls.
func (in *Inbound) PlaintextRefused(p uint16) (refused bool, by MTLSMode) {
	switch in.Port(p).MTLS {
	case MTLSStrict:
		return true, MTLSStrict
	case MTLSPermissive:
		return false, MTLSPermissive
	}
	return in.RequireMTLS, MTLSDefault
}

// InboundPort is one port's inbound settings.
type InboundPort struct {
	Port, AppPort uint16
	Protocol      Protocol
	Skip          bool
	MTLS          MTLSMode
	// RateLimit is the port's rate limit as configured; nil: none.
	RateLimit *ratelimit.Config `json:"-"`
	// Limiter enforces RateLimit, keyed by the caller's SPIFFE ID ("" for
	// every plaintext caller together); nil: no rate limit. It belongs to
	// this compiled config: a new config starts with full buckets.
	Limiter *ratelimit.Limiter `json:"-"`
}

// Outbound is the resolved outbound side.
type Outbound struct {
	TransparentAddress string
	Explicit           []Explicit
}

// Explicit is one explicit-mode outbound listener.
type Explicit struct {
	Address  string
	Service  *Service
	Protocol Protocol
}

// Service is a destination with its endpoints.
type Service struct {
	Name      string
	Addresses []netip.AddrPort
	Protocol  Protocol
	Endpoints []Endpoint
	Policy    string
	HashOn    HashOn
	Pool      Pool
	// Rules are the route rules attached to the service, Routes their
	// compiled table (nil without rules) and Policies what applies to each.
	Rules       []route.Rule
	Routes      *route.Table
	Policies    map[RuleKey]*RulePolicy
	RetryBudget retry.BudgetConfig
	Breaker     Breaker
}

// Breaker is a service's circuit breaking: limits (zero: none), outlier
// detection (on by default, nil when disabled) and the adaptive concurrency
// limit (nil: off, the default).
type Breaker struct {
	Limits   breaker.LimitsConfig
	Outlier  *breaker.OutlierConfig
	Adaptive *breaker.AdaptiveConfig
}

// HashOn says what ring-hash balancing hashes.
type HashOn struct {
	Header, Cookie string
	SourceIP       bool
}

// Pool bounds the connections to each endpoint.
type Pool struct {
	MaxConnections, MaxIdle int
	IdleTimeout             time.Duration
}

// Endpoint is one backend of a service.
type Endpoint struct {
	Address      netip.AddrPort
	ProxyAddress netip.AddrPort // zero: connect to Address
	Identity     spiffeid.ID    // zero: not meshed, plaintext
	Weight       uint32
	Zone         string
}

// Meshed reports whether the endpoint runs a weft-proxy that speaks mTLS.
func (e Endpoint) Meshed() bool { return !e.Identity.IsZero() }

// Dial is the address a connection to the endpoint goes to.
func (e Endpoint) Dial() netip.AddrPort {
	if e.ProxyAddress.IsValid() {
		return e.ProxyAddress
	}
	return e.Address
}

// Timeouts are the resolved timeouts.
type Timeouts struct {
	Connect, HeaderRead, HTTPIdle, TCPIdle, Drain time.Duration
}

// problems collects every validation error of a config, each with its field
// path, so one run of the proxy reports them all.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

// Compile validates cfg and resolves its defaults. The error, when not nil,
// lists every problem found, one per line, each naming the field.
func Compile(cfg *weftv1.ProxyConfig) (*Compiled, error) {
	var errs problems
	c := &Compiled{
		Source:         cfg,
		Version:        cfg.GetVersion(),
		AdminAddress:   DefaultAdminAddress,
		Services:       map[string]*Service{},
		VIPs:           map[netip.AddrPort]*Service{},
		AccessLog:      cfg.GetAccessLog(),
		MaxHeaderBytes: DefaultMaxHeaderBytes,
	}
	if a := cfg.GetAdmin().GetAddress(); a != "" {
		checkListenAddr(&errs, "admin.address", a)
		c.AdminAddress = a
	}
	if n := cfg.GetMaxHeaderBytes(); n != 0 {
		if n < 1024 || n > 1<<20 {
			errs.add("max_header_bytes", "%d is out of range; use a value between 1024 and 1048576", n)
		}
		c.MaxHeaderBytes = int(n)
	}
	if t := cfg.GetTls(); t.GetIssued() {
		c.TLS = &TLSFiles{Issued: true}
		if t.GetCertFile()+t.GetKeyFile()+t.GetTrustBundleFile() != "" {
			errs.add("tls.issued", "is set together with certificate files; an issued certificate is held in memory: drop cert_file, key_file and trust_bundle_file, or issued")
		}
	} else if t != nil {
		c.TLS = &TLSFiles{CertFile: t.GetCertFile(), KeyFile: t.GetKeyFile(), TrustBundleFile: t.GetTrustBundleFile()}
		for _, f := range []struct{ field, v string }{{"tls.cert_file", t.GetCertFile()}, {"tls.key_file", t.GetKeyFile()}, {"tls.trust_bundle_file", t.GetTrustBundleFile()}} {
			if f.v == "" {
				errs.add(f.field, "is empty; set all three of cert_file, key_file and trust_bundle_file, or drop the tls section")
			}
		}
	}
	compileTimeouts(&errs, cfg, c)
	compileServices(&errs, cfg, c)
	compileInbound(&errs, cfg, c)
	compileOutbound(&errs, cfg, c)

	if c.Inbound == nil && c.Outbound.TransparentAddress == "" && len(c.Outbound.Explicit) == 0 {
		errs.add("inbound/outbound", "no listener is configured; add an inbound section, outbound.transparent_address or an outbound.explicit listener")
	}
	if c.TLS == nil {
		if c.Inbound != nil {
			errs.add("tls", "the inbound listener needs the proxy's certificate to accept mesh traffic; set tls.cert_file, tls.key_file and tls.trust_bundle_file")
		}
		for _, name := range sortedKeys(c.Services) {
			for i, ep := range c.Services[name].Endpoints {
				if ep.Meshed() {
					errs.add(fmt.Sprintf("services[%s].endpoints[%d].identity", name, i), "endpoint is meshed but this proxy has no certificate; set the tls section or clear the identity to call it in plaintext")
					break
				}
			}
		}
	}
	if c.Inbound != nil {
		c.Inbound.ProxyPorts = proxyPorts(c)
		for p := range c.Inbound.ProxyPorts {
			if ip, ok := c.Inbound.Ports[p]; ok && !ip.Skip {
				errs.add("inbound.ports", "port %d is one of the proxy's own listeners; an application cannot be served on it", p)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// proxyPorts lists the ports of the proxy's own listeners, when the
// application host is loopback (where they would be reachable).
func proxyPorts(c *Compiled) map[uint16]bool {
	if a, err := netip.ParseAddr(c.Inbound.AppHost); err != nil || !a.IsLoopback() {
		return nil
	}
	ports := map[uint16]bool{}
	addrs := []string{c.AdminAddress, c.Inbound.Address, c.Outbound.TransparentAddress}
	for _, e := range c.Outbound.Explicit {
		addrs = append(addrs, e.Address)
	}
	for _, a := range addrs {
		if ap, err := netip.ParseAddrPort(a); err == nil {
			ports[ap.Port()] = true
		}
	}
	return ports
}

func compileTimeouts(errs *problems, cfg *weftv1.ProxyConfig, c *Compiled) {
	t := cfg.GetTimeouts()
	c.Timeouts = Timeouts{
		Connect:    duration(errs, "timeouts.connect", t.GetConnect(), DefaultConnectTimeout),
		HeaderRead: duration(errs, "timeouts.header_read", t.GetHeaderRead(), DefaultHeaderReadTimout),
		HTTPIdle:   duration(errs, "timeouts.http_idle", t.GetHttpIdle(), DefaultHTTPIdleTimeout),
		TCPIdle:    duration(errs, "timeouts.tcp_idle", t.GetTcpIdle(), DefaultTCPIdleTimeout),
		Drain:      duration(errs, "timeouts.drain", t.GetDrain(), DefaultDrainTimeout),
	}
	c.DetectTimeout = duration(errs, "detection.timeout", cfg.GetDetection().GetTimeout(), DefaultDetectTimeout)
	if c.DetectTimeout > 10*time.Second {
		errs.add("detection.timeout", "%s is too long: server-speaks-first clients would hang; use at most 10s (default 300ms)", c.DetectTimeout)
	}
	for i, p := range cfg.GetDetection().GetOpaquePorts() {
		if p == 0 || p > 65535 {
			errs.add(fmt.Sprintf("detection.opaque_ports[%d]", i), "%d is not a TCP port (1-65535)", p)
			continue
		}
		c.OpaquePorts = append(c.OpaquePorts, uint16(p))
	}
}

func duration(errs *problems, field string, d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	if err := d.CheckValid(); err != nil {
		errs.add(field, "invalid duration: %v", err)
		return def
	}
	v := d.AsDuration()
	if v <= 0 {
		errs.add(field, "must be positive, got %s; remove the field to use the default %s", v, def)
		return def
	}
	return v
}

func compileServices(errs *problems, cfg *weftv1.ProxyConfig, c *Compiled) {
	for i, s := range cfg.GetServices() {
		field := fmt.Sprintf("services[%d]", i)
		if s.GetName() == "" {
			errs.add(field+".name", "is empty; every service needs a unique name")
			continue
		}
		if _, dup := c.Services[s.GetName()]; dup {
			errs.add(field+".name", "%q is defined twice; service names must be unique", s.GetName())
			continue
		}
		svc := &Service{
			Name:     s.GetName(),
			Protocol: protocol(errs, field+".protocol", s.GetProtocol()),
			Pool: Pool{
				MaxConnections: DefaultMaxConnections,
				MaxIdle:        DefaultMaxIdle,
				IdleTimeout:    DefaultPoolIdleTimeout,
			},
		}
		for j, a := range s.GetAddresses() {
			ap, err := netip.ParseAddrPort(a)
			if err != nil {
				errs.add(fmt.Sprintf("%s.addresses[%d]", field, j), "%q is not ip:port (e.g. 10.96.0.10:80): %v", a, err)
				continue
			}
			if other, dup := c.VIPs[ap]; dup {
				errs.add(fmt.Sprintf("%s.addresses[%d]", field, j), "%s already belongs to service %q", ap, other.Name)
				continue
			}
			svc.Addresses = append(svc.Addresses, ap)
			c.VIPs[ap] = svc
		}
		for j, e := range s.GetEndpoints() {
			if ep, ok := endpoint(errs, fmt.Sprintf("%s.endpoints[%d]", field, j), e); ok {
				svc.Endpoints = append(svc.Endpoints, ep)
			}
		}
		lb := s.GetLoadBalancer()
		svc.Policy = lb.GetPolicy()
		switch svc.Policy {
		case "":
			svc.Policy = PolicyP2CEWMA
		case PolicyP2CEWMA, PolicyRoundRobin, PolicyLeastRequest, PolicyRingHash:
		default:
			errs.add(field+".load_balancer.policy", "unknown policy %q; use one of %s, %s, %s, %s", svc.Policy, PolicyP2CEWMA, PolicyRoundRobin, PolicyLeastRequest, PolicyRingHash)
		}
		h := lb.GetHashOn()
		svc.HashOn = HashOn{Header: h.GetHeader(), Cookie: h.GetCookie(), SourceIP: h.GetSourceIp()}
		set := 0
		for _, b := range []bool{svc.HashOn.Header != "", svc.HashOn.Cookie != "", svc.HashOn.SourceIP} {
			if b {
				set++
			}
		}
		switch {
		case set > 1:
			errs.add(field+".load_balancer.hash_on", "set exactly one of header, cookie or source_ip")
		case svc.Policy == PolicyRingHash && set == 0:
			errs.add(field+".load_balancer.hash_on", "policy ring-hash needs hash_on.header, hash_on.cookie or hash_on.source_ip")
		case svc.Policy != PolicyRingHash && set > 0:
			errs.add(field+".load_balancer.hash_on", "is only used by policy ring-hash; set policy: ring-hash or remove hash_on")
		}
		if p := lb.GetConnectionPool(); p != nil {
			if p.GetMaxConnections() > 0 {
				svc.Pool.MaxConnections = int(p.GetMaxConnections())
			}
			if p.GetMaxIdle() > 0 {
				svc.Pool.MaxIdle = int(p.GetMaxIdle())
			}
			svc.Pool.IdleTimeout = duration(errs, field+".load_balancer.connection_pool.idle_timeout", p.GetIdleTimeout(), DefaultPoolIdleTimeout)
		}
		compileRoutes(errs, field, s, svc)
		svc.RetryBudget = retry.DefaultBudgetConfig()
		if b := s.GetRetryBudget(); b != nil {
			if b.GetRetryRatio() != 0 {
				svc.RetryBudget.RetryRatio = b.GetRetryRatio()
			}
			if b.GetMinRetriesPerSecond() != 0 {
				svc.RetryBudget.MinRetriesPerSecond = int(b.GetMinRetriesPerSecond())
			}
			svc.RetryBudget.TTL = duration(errs, field+".retry_budget.ttl", b.GetTtl(), svc.RetryBudget.TTL)
			if err := svc.RetryBudget.Validate(); err != nil {
				errs.add(field+".retry_budget", "%v", err)
			}
		}
		svc.Breaker = compileBreaker(errs, field+".circuit_breaker", s.GetCircuitBreaker())
		c.Services[svc.Name] = svc
	}
	checkRouteRefs(errs, c)
}

func endpoint(errs *problems, field string, e *weftv1.Endpoint) (Endpoint, bool) {
	ok := true
	ep := Endpoint{Weight: e.GetWeight(), Zone: e.GetZone()}
	if ep.Weight == 0 {
		ep.Weight = 1
	}
	var err error
	if ep.Address, err = netip.ParseAddrPort(e.GetAddress()); err != nil {
		errs.add(field+".address", "%q is not ip:port (e.g. 10.0.0.7:8080): %v", e.GetAddress(), err)
		ok = false
	}
	if pa := e.GetProxyAddress(); pa != "" {
		if ep.ProxyAddress, err = netip.ParseAddrPort(pa); err != nil {
			errs.add(field+".proxy_address", "%q is not ip:port (e.g. 10.0.0.7:4143): %v", pa, err)
			ok = false
		}
	}
	if id := e.GetIdentity(); id != "" {
		if ep.Identity, err = spiffeid.FromString(id); err != nil {
			errs.add(field+".identity", "%q is not a SPIFFE ID (spiffe://<trust-domain>/ns/<ns>/sa/<sa>): %v", id, err)
			ok = false
		}
	} else if ep.ProxyAddress.IsValid() {
		errs.add(field+".proxy_address", "is set but identity is empty; a peer proxy is always called over mTLS, so set its identity")
		ok = false
	}
	return ep, ok
}

func compileInbound(errs *problems, cfg *weftv1.ProxyConfig, c *Compiled) {
	in := cfg.GetInbound()
	if in == nil {
		return
	}
	ci := &Inbound{
		Address:     in.GetAddress(),
		AppHost:     in.GetAppHost(),
		Ports:       map[uint16]InboundPort{},
		RequireMTLS: in.GetRequireMtls(),
	}
	if ci.Address == "" {
		ci.Address = DefaultInboundAddress
	} else {
		checkListenAddr(errs, "inbound.address", ci.Address)
	}
	if ci.AppHost == "" {
		ci.AppHost = DefaultAppHost
	} else if _, err := netip.ParseAddr(ci.AppHost); err != nil {
		errs.add("inbound.app_host", "%q is not an IP address (e.g. 127.0.0.1): %v", ci.AppHost, err)
	}
	for i, p := range in.GetPorts() {
		field := fmt.Sprintf("inbound.ports[%d]", i)
		if p.GetPort() == 0 || p.GetPort() > 65535 {
			errs.add(field+".port", "%d is not a TCP port (1-65535)", p.GetPort())
			continue
		}
		ip := InboundPort{
			Port:     uint16(p.GetPort()),
			AppPort:  uint16(p.GetAppPort()),
			Protocol: protocol(errs, field+".protocol", p.GetProtocol()),
			Skip:     p.GetSkip(),
			MTLS:     MTLSMode(p.GetMtls()),
		}
		switch ip.MTLS {
		case MTLSDefault, MTLSStrict, MTLSPermissive:
		default:
			errs.add(field+".mtls", "unknown mode %q; use strict, permissive, or leave it empty to follow inbound.require_mtls", p.GetMtls())
		}
		if p.GetAppPort() > 65535 {
			errs.add(field+".app_port", "%d is not a TCP port (1-65535)", p.GetAppPort())
		}
		if ip.AppPort == 0 {
			ip.AppPort = ip.Port
		}
		if rl := p.GetRateLimit(); rl != nil {
			ip.RateLimit, ip.Limiter = compileInboundRateLimit(errs, field+".rate_limit", rl)
		}
		if _, dup := ci.Ports[ip.Port]; dup {
			errs.add(field+".port", "port %d is listed twice", ip.Port)
		}
		ci.Ports[ip.Port] = ip
	}
	az, err := authz.Compile(in.GetAuthorization())
	var ce *authz.CompileError
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			errs.add("inbound.authorization."+p.Field, "%s", p.Problem)
		}
	case err != nil:
		errs.add("inbound.authorization", "%v", err)
	}
	ci.Authz = az
	c.Inbound = ci
}

func compileOutbound(errs *problems, cfg *weftv1.ProxyConfig, c *Compiled) {
	out := cfg.GetOutbound()
	c.Outbound.TransparentAddress = out.GetTransparentAddress()
	if c.Outbound.TransparentAddress != "" {
		checkListenAddr(errs, "outbound.transparent_address", c.Outbound.TransparentAddress)
	}
	seen := map[string]bool{}
	for i, e := range out.GetExplicit() {
		field := fmt.Sprintf("outbound.explicit[%d]", i)
		checkListenAddr(errs, field+".address", e.GetAddress())
		if seen[e.GetAddress()] {
			errs.add(field+".address", "%s is used by two explicit listeners", e.GetAddress())
		}
		seen[e.GetAddress()] = true
		svc, ok := c.Services[e.GetService()]
		if !ok {
			errs.add(field+".service", "service %q is not defined in services; known services: %s", e.GetService(), strings.Join(sortedKeys(c.Services), ", "))
			continue
		}
		p := protocol(errs, field+".protocol", e.GetProtocol())
		if p == Detect {
			p = svc.Protocol
		}
		c.Outbound.Explicit = append(c.Outbound.Explicit, Explicit{Address: e.GetAddress(), Service: svc, Protocol: p})
	}
}

func protocol(errs *problems, field, v string) Protocol {
	switch p := Protocol(v); p {
	case Detect, Opaque, HTTP1, HTTP2, GRPC:
		return p
	default:
		errs.add(field, "unknown protocol %q; use opaque, http1, http2, grpc, or leave it empty to detect", v)
		return Detect
	}
}

func checkListenAddr(errs *problems, field, a string) {
	if _, err := netip.ParseAddrPort(a); err != nil {
		errs.add(field, "%q is not ip:port (e.g. 127.0.0.1:4140): %v", a, err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func compileBreaker(errs *problems, f string, cb *weftv1.CircuitBreaker) Breaker {
	out := Breaker{Limits: breaker.LimitsConfig{
		MaxRequests: int(cb.GetMaxRequests()),
		MaxPending:  int(cb.GetMaxPending()),
	}}
	if cb.GetPendingTimeout() != nil {
		out.Limits.PendingTimeout = duration(errs, f+".pending_timeout", cb.GetPendingTimeout(), 0)
	}
	if _, err := breaker.NewLimits(out.Limits); err != nil {
		errs.add(f, "%v", err)
	}
	if od := cb.GetOutlierDetection(); !od.GetDisabled() {
		oc := breaker.DefaultOutlierConfig()
		if v := od.GetConsecutiveFailures(); v != 0 {
			oc.ConsecutiveFailures = int(v)
		}
		if v := od.GetSuccessRateMinRequests(); v != 0 {
			oc.SuccessRateMinRequests = int(v)
		}
		if v := od.GetSuccessRateStdevFactor(); v != 0 {
			oc.SuccessRateStdevFactor = v
		}
		oc.Interval = duration(errs, f+".outlier_detection.interval", od.GetInterval(), oc.Interval)
		oc.BaseEjectionTime = duration(errs, f+".outlier_detection.base_ejection_time", od.GetBaseEjectionTime(), oc.BaseEjectionTime)
		if v := od.GetMaxEjectionPercent(); v != 0 {
			oc.MaxEjectionPercent = int(v)
		}
		if _, err := breaker.NewDetector(oc); err != nil {
			errs.add(f+".outlier_detection", "%v", err)
		}
		out.Outlier = &oc
	}
	if ac := cb.GetAdaptiveConcurrency(); ac.GetEnabled() {
		a := &breaker.AdaptiveConfig{InitialLimit: int(ac.GetInitialLimit()), MinLimit: int(ac.GetMinLimit()), MaxLimit: int(ac.GetMaxLimit())}
		if _, err := breaker.NewAdaptive(*a); err != nil {
			errs.add(f+".adaptive_concurrency", "%v", err)
		}
		out.Adaptive = a
	}
	return out
}

// compileInboundRateLimit checks an inbound port's rate limit and builds its
// limiter: a total for the port, per-caller buckets, or both.
func compileInboundRateLimit(errs *problems, field string, rl *weftv1.RateLimit) (*ratelimit.Config, *ratelimit.Limiter) {
	c := ratelimit.Config{
		RequestsPerSecond:            rl.GetRequestsPerSecond(),
		Burst:                        int(rl.GetBurst()),
		PerIdentityRequestsPerSecond: rl.GetPerIdentityRequestsPerSecond(),
		PerIdentityBurst:             int(rl.GetPerIdentityBurst()),
	}
	if c.RequestsPerSecond == 0 && c.PerIdentityRequestsPerSecond == 0 && c.Burst == 0 && c.PerIdentityBurst == 0 {
		errs.add(field, "sets no limit; set requests_per_second (the port's total), per_identity_requests_per_second (each caller's), or both, or remove rate_limit")
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		errs.add(field, "%v", err)
		return nil, nil
	}
	l, err := ratelimit.New(c)
	if err != nil {
		errs.add(field, "%v", err)
		return nil, nil
	}
	return &c, l
}
