package discovery_test

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/discovery"
	"github.com/weft-mesh/weft/internal/proxy/configversion"
)

// svc is a service with one endpoint per address.
func svc(name string, addrs ...string) *weftv1.Service {
	s := &weftv1.Service{Name: name, Protocol: "http1", Addresses: []string{"10.96.0.1:80"}}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, &weftv1.Endpoint{Address: a, Identity: "spiffe://weft.test/ns/a/sa/" + name})
	}
	return s
}

// withServices is cfg(version) with services.
func withServices(version string, services ...*weftv1.Service) *weftv1.ProxyConfig {
	c := cfg(version)
	c.Services = services
	return c
}

// rebuild applies an incremental response to base as the protocol says a
// proxy must (independently of configclient's code).
func rebuild(t *testing.T, base *weftv1.ProxyConfig, r *discoveryv1.DiscoveryResponse) *weftv1.ProxyConfig {
	t.Helper()
	if r.GetBaseVersion() == "" {
		return r.GetConfig()
	}
	if len(r.GetConfig().GetServices()) != 0 {
		t.Fatalf("incremental response with services in config: %v", r.GetConfig().GetServices())
	}
	byName := map[string]*weftv1.Service{}
	for _, s := range base.GetServices() {
		byName[s.GetName()] = s
	}
	for _, s := range r.GetServicesUpdated() {
		byName[s.GetName()] = s
	}
	for _, n := range r.GetServicesRemoved() {
		if _, ok := byName[n]; !ok {
			t.Fatalf("services_removed names %q, not in the base", n)
		}
		delete(byName, n)
	}
	out := proto.Clone(r.GetConfig()).(*weftv1.ProxyConfig)
	for _, s := range byName {
		out.Services = append(out.Services, s)
	}
	slices.SortFunc(out.Services, func(a, b *weftv1.Service) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}

func names(ss []*weftv1.Service) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.GetName())
	}
	return out
}

// ack answers r with an ACK and waits until the server recorded it.
func ack(t *testing.T, c *discovery.Cache, s *rawStream, r *discoveryv1.DiscoveryResponse) {
	t.Helper()
	s.send(&discoveryv1.DiscoveryRequest{Version: r.GetVersion(), ResponseNonce: r.GetNonce()})
	waitFor(t, "the ACK of "+r.GetVersion(), func() bool { st, _ := statusOf(c, idA); return st.AckedVersion == r.GetVersion() })
}

// TestIncrementalResponses: after an ACK, the next snapshot goes out as
// only what changed, when that is smaller; the proxy's rebuilt config is
// the snapshot, version for version.
func TestIncrementalResponses(t *testing.T) {
	a, b, c := svc("a.default:80", "10.0.0.1:8080"), svc("b.default:80", "10.0.1.1:8080", "10.0.1.2:8080"), svc("c.default:80", "10.0.2.1:8080")
	b2 := svc("b.default:80", "10.0.1.1:8080", "10.0.1.3:8080")
	d := svc("d.default:80", "10.0.3.1:8080")
	base := withServices("v1", a, b, c)
	outbound := withServices("v1", a, b, c)
	outbound.Outbound.Explicit = []*weftv1.ExplicitListener{{Address: "127.0.0.1:15000", Service: "a.default:80"}}
	cases := []struct {
		name                  string
		next                  *weftv1.ProxyConfig
		incremental           bool
		wantUpdated, wantGone []string
	}{
		{"one endpoint of one service", withServices("v1", a, b2, c), true, []string{"b.default:80"}, nil},
		{"a service removed", withServices("v1", a, c), true, nil, []string{"b.default:80"}},
		{"a service added", withServices("v1", a, b, c, d), true, []string{"d.default:80"}, nil},
		{"added, changed and removed", withServices("v1", b2, c, d), true, []string{"b.default:80", "d.default:80"}, []string{"a.default:80"}},
		{"a field other than services", outbound, true, nil, nil},
		{"the version label", withServices("v2", a, b, c), true, nil, nil},
		{"every service changed: full is smaller", withServices("v1", svc("a.default:80"), svc("b.default:80"), svc("c.default:80")), false, nil, nil},
		{"services not sorted by name: full", withServices("v1", c, b2, a), false, nil, nil},
		{"two services of one name: full", withServices("v1", a, b2, b2, c), false, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cache := discovery.NewCache()
			addr := startServer(t, cache, discovery.Options{Debounce: -1})
			v1 := cache.Set(idA, base)
			s := openStream(t, addr)
			s.send(&discoveryv1.DiscoveryRequest{Node: &discoveryv1.Node{Identity: idA, SupportsIncremental: true}})
			r1 := s.next()
			if r1.GetBaseVersion() != "" || r1.GetVersion() != v1 || !proto.Equal(r1.GetConfig(), base) {
				t.Fatalf("first response of a stream: base %q, version %s; want the whole config %s", r1.GetBaseVersion(), r1.GetVersion(), v1)
			}
			ack(t, cache, s, r1)

			v2 := cache.Set(idA, tc.next)
			r2 := s.next()
			if r2.GetVersion() != v2 {
				t.Fatalf("version %s, want %s", r2.GetVersion(), v2)
			}
			if got := r2.GetBaseVersion() != ""; got != tc.incremental {
				t.Fatalf("incremental = %v (base %q), want %v", got, r2.GetBaseVersion(), tc.incremental)
			}
			if !tc.incremental {
				if len(r2.GetServicesUpdated())+len(r2.GetServicesRemoved()) > 0 || !proto.Equal(r2.GetConfig(), tc.next) {
					t.Fatalf("full response: %v", r2)
				}
				return
			}
			if r2.GetBaseVersion() != v1 {
				t.Errorf("base_version %s, want the acknowledged %s", r2.GetBaseVersion(), v1)
			}
			if got := names(r2.GetServicesUpdated()); !slices.Equal(got, tc.wantUpdated) {
				t.Errorf("services_updated %v, want %v", got, tc.wantUpdated)
			}
			if got := r2.GetServicesRemoved(); !slices.Equal(got, tc.wantGone) {
				t.Errorf("services_removed %v, want %v", got, tc.wantGone)
			}
			whole := rebuild(t, base, r2)
			if !proto.Equal(whole, tc.next) {
				t.Errorf("rebuilt config differs from the snapshot:\n got %v\nwant %v", whole, tc.next)
			}
			if got, err := configversion.Of(whole); err != nil || got != v2 {
				t.Errorf("rebuilt config hashes to %s (%v), want the response's version %s", got, err, v2)
			}
		})
	}
}

// TestIncrementalProtocol: when the server sends whole configs and on
// which base it builds incremental ones.
func TestIncrementalProtocol(t *testing.T) {
	a, c := svc("a.default:80", "10.0.0.1:8080"), svc("c.default:80", "10.0.2.1:8080")
	at := func(bAddr string) *weftv1.ProxyConfig { return withServices("v", a, svc("b.default:80", bAddr), c) }
	type step struct {
		set *weftv1.ProxyConfig // Set before reading the next response, if any
		// answer to the response: "ack", "nack", "resync", "none" (no
		// answer), "stale-resync" (a resync answering the response before)
		answer string
		// what the response must be: "full", or "incremental from <i>"
		// (the config set at step i)
		want string
	}
	cases := []struct {
		name  string
		old   bool // the proxy does not set supports_incremental
		steps []step
	}{
		{"a new stream gets a full config, then incremental ones", false, []step{
			{at("10.0.1.1:1"), "ack", "full"},
			{at("10.0.1.1:2"), "ack", "incremental from 0"},
			{at("10.0.1.1:3"), "ack", "incremental from 1"},
		}},
		{"an unanswered response: full", false, []step{
			{at("10.0.1.1:1"), "ack", "full"},
			{at("10.0.1.1:2"), "none", "incremental from 0"},
			{at("10.0.1.1:3"), "ack", "full"},
			{at("10.0.1.1:4"), "ack", "incremental from 2"},
		}},
		{"full_resync: the same version whole, at once", false, []step{
			{at("10.0.1.1:1"), "ack", "full"},
			{at("10.0.1.1:2"), "resync", "incremental from 0"},
			{nil, "ack", "full"},
			{at("10.0.1.1:3"), "ack", "incremental from 1"},
		}},
		{"after a NACK the base stays the last acknowledged", false, []step{
			{at("10.0.1.1:1"), "ack", "full"},
			{at("10.0.1.1:2"), "nack", "incremental from 0"},
			{at("10.0.1.1:3"), "ack", "incremental from 0"},
			{at("10.0.1.1:4"), "ack", "incremental from 2"},
		}},
		{"a proxy older than incremental updates: always full", true, []step{
			{at("10.0.1.1:1"), "ack", "full"},
			{at("10.0.1.1:2"), "ack", "full"},
			{at("10.0.1.1:3"), "ack", "full"},
		}},
		{"a NACK of a full config: full again", false, []step{
			{at("10.0.1.1:1"), "nack", "full"},
			{at("10.0.1.1:2"), "ack", "full"},
			{at("10.0.1.1:3"), "ack", "incremental from 1"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cache := discovery.NewCache()
			addr := startServer(t, cache, discovery.Options{Debounce: -1})
			s := openStream(t, addr)
			s.send(&discoveryv1.DiscoveryRequest{Node: &discoveryv1.Node{Identity: idA, SupportsIncremental: !tc.old}})
			var sets []*weftv1.ProxyConfig // the config in force at each step
			for i, st := range tc.steps {
				cur := st.set
				if cur == nil {
					cur = sets[i-1]
				} else {
					cache.Set(idA, cur)
				}
				sets = append(sets, cur)
				r := s.next()
				want, _ := configversion.Of(cur)
				if r.GetVersion() != want {
					t.Fatalf("step %d: version %s, want %s", i, r.GetVersion(), want)
				}
				var from int
				switch {
				case st.want == "full":
					if r.GetBaseVersion() != "" || !proto.Equal(r.GetConfig(), cur) {
						t.Fatalf("step %d: want the whole config, got base %q with %d services updated", i, r.GetBaseVersion(), len(r.GetServicesUpdated()))
					}
				default:
					if _, err := fmt.Sscanf(st.want, "incremental from %d", &from); err != nil {
						t.Fatal(err)
					}
					baseVersion, _ := configversion.Of(sets[from])
					if r.GetBaseVersion() != baseVersion {
						t.Fatalf("step %d: base_version %q, want %s (step %d)", i, r.GetBaseVersion(), baseVersion, from)
					}
					if got := rebuild(t, sets[from], r); !proto.Equal(got, cur) {
						t.Fatalf("step %d: the rebuilt config differs from the snapshot", i)
					}
					if len(r.GetServicesUpdated()) != 1 || len(r.GetServicesRemoved()) != 0 {
						t.Fatalf("step %d: updated %v removed %v, want only b", i, names(r.GetServicesUpdated()), r.GetServicesRemoved())
					}
				}
				switch st.answer {
				case "ack":
					ack(t, cache, s, r)
				case "nack":
					s.send(&discoveryv1.DiscoveryRequest{Version: r.GetVersion(), ResponseNonce: r.GetNonce(), ErrorDetail: "refused"})
					waitFor(t, "the NACK", func() bool { st, _ := statusOf(cache, idA); return st.RejectedVersion == r.GetVersion() })
				case "resync":
					s.send(&discoveryv1.DiscoveryRequest{ResponseNonce: r.GetNonce(), FullResync: true})
				}
			}
			s.none(50 * time.Millisecond)
		})
	}
}

// TestFullResyncStale: a full_resync answering an older response than the
// latest is ignored (the proxy answers the latest as well); an ACK of the
// latest then makes it the base.
func TestFullResyncStale(t *testing.T) {
	cache := discovery.NewCache()
	addr := startServer(t, cache, discovery.Options{Debounce: -1})
	s := openStream(t, addr)
	s.send(&discoveryv1.DiscoveryRequest{Node: &discoveryv1.Node{Identity: idA, SupportsIncremental: true}})
	cache.Set(idA, withServices("v", svc("a", "10.0.0.1:1"), svc("b", "10.0.0.2:1")))
	r1 := s.next()
	ack(t, cache, s, r1)
	cache.Set(idA, withServices("v", svc("a", "10.0.0.1:2"), svc("b", "10.0.0.2:1")))
	r2 := s.next()
	cache.Set(idA, withServices("v", svc("a", "10.0.0.1:3"), svc("b", "10.0.0.2:1")))
	r3 := s.next() // r2 unanswered: whole
	if r2.GetBaseVersion() == "" || r3.GetBaseVersion() != "" {
		t.Fatalf("bases %q, %q: want incremental, then full", r2.GetBaseVersion(), r3.GetBaseVersion())
	}
	s.send(&discoveryv1.DiscoveryRequest{ResponseNonce: r2.GetNonce(), FullResync: true})
	s.none(100 * time.Millisecond)
	ack(t, cache, s, r3)
	v4 := cache.Set(idA, withServices("v", svc("a", "10.0.0.1:4"), svc("b", "10.0.0.2:1")))
	if r4 := s.next(); r4.GetVersion() != v4 || r4.GetBaseVersion() != r3.GetVersion() {
		t.Fatalf("response %s on base %q, want %s on %s", r4.GetVersion(), r4.GetBaseVersion(), v4, r3.GetVersion())
	}
}

// TestIncrementalSize: a proxy that watches many services gets a change of
// one endpoint in a small fraction of the bytes of its whole config.
func TestIncrementalSize(t *testing.T) {
	cases := []struct {
		services   int
		maxPercent float64 // of the whole config's response
	}{
		{50, 10}, // the scale benchmark's proxies (test/scale)
		{200, 2},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.services), func(t *testing.T) {
			mk := func(changed string) *weftv1.ProxyConfig {
				c := cfg("v")
				for i := range tc.services {
					var addrs []string
					for j := range 10 {
						addrs = append(addrs, fmt.Sprintf("10.%d.%d.%d:8080", i/256, i%256, j+1))
					}
					s := svc(fmt.Sprintf("svc-%03d.default:80", i), addrs...)
					s.Routes = []*weftv1.RouteRule{{Route: "default/r", Kind: "http", Index: 0}}
					c.Services = append(c.Services, s)
				}
				c.Services[7].Endpoints[3].Address = changed
				return c
			}
			cache := discovery.NewCache()
			addr := startServer(t, cache, discovery.Options{Debounce: -1})
			s := openStream(t, addr)
			s.send(&discoveryv1.DiscoveryRequest{Node: &discoveryv1.Node{Identity: idA, SupportsIncremental: true}})
			cache.Set(idA, mk("10.0.7.4:8080"))
			full := s.next()
			ack(t, cache, s, full)
			cache.Set(idA, mk("10.0.7.99:8080"))
			inc := s.next()
			if inc.GetBaseVersion() != full.GetVersion() || len(inc.GetServicesUpdated()) != 1 {
				t.Fatalf("base %q with %d services updated, want one on %s", inc.GetBaseVersion(), len(inc.GetServicesUpdated()), full.GetVersion())
			}
			fullSize, incSize := proto.Size(full), proto.Size(inc)
			percent := 100 * float64(incSize) / float64(fullSize)
			t.Logf("%d services, one endpoint changed: %d bytes incremental, %d bytes whole (%.2f%%)", tc.services, incSize, fullSize, percent)
			if percent >= tc.maxPercent {
				t.Errorf("incremental response is %d bytes, whole config %d (%.2f%%): want under %v%%", incSize, fullSize, percent, tc.maxPercent)
			}
		})
	}
}
