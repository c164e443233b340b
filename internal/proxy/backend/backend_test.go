package backend

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/balance"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/retry"
)

func svc(policy string, hash config.HashOn, addrs ...string) *config.Service {
	s := &config.Service{Name: "web", Policy: policy, HashOn: hash, RetryBudget: retry.DefaultBudgetConfig()}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, config.Endpoint{Address: netip.MustParseAddrPort(a), Weight: 1})
	}
	return s
}

func TestPickReturnsConfiguredEndpoint(t *testing.T) {
	b, err := New(svc(config.PolicyRoundRobin, config.HashOn{}, "10.0.0.1:80", "10.0.0.2:80"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 4 {
		ep, p, err := b.Pick(balance.Key{})
		if err != nil {
			t.Fatal(err)
		}
		seen[ep.Address.String()] = true
		p.Done(0, nil)
	}
	if len(seen) != 2 {
		t.Fatalf("round robin used %v", seen)
	}
}

func TestNoEndpointsNamesTheService(t *testing.T) {
	b, _ := New(svc(config.PolicyP2CEWMA, config.HashOn{}), nil, Options{})
	_, _, err := b.Pick(balance.Key{})
	if !errors.Is(err, balance.ErrNoEndpoints) || err.Error() == "" {
		t.Fatalf("got %v", err)
	}
}

// TestReloadKeepsInFlight: a new generation keeps the balancer, so a pick
// made before the swap is finished safely after it, and removed endpoints
// are no longer picked.
func TestReloadKeepsInFlight(t *testing.T) {
	old, _ := New(svc(config.PolicyLeastRequest, config.HashOn{}, "10.0.0.1:80", "10.0.0.2:80"), nil, Options{})
	_, inFlight, err := old.Pick(balance.Key{})
	if err != nil {
		t.Fatal(err)
	}
	next, _ := New(svc(config.PolicyLeastRequest, config.HashOn{}, "10.0.0.3:80"), old, Options{})
	inFlight.Done(0, nil)
	for range 10 {
		ep, p, err := next.Pick(balance.Key{})
		if err != nil {
			t.Fatal(err)
		}
		if ep.Address.String() != "10.0.0.3:80" {
			t.Fatalf("picked removed endpoint %s", ep.Address)
		}
		p.Done(0, nil)
	}
	if old.shared != next.shared {
		t.Fatal("balancer state was not carried over")
	}
	other, _ := New(svc(config.PolicyRoundRobin, config.HashOn{}, "10.0.0.3:80"), next, Options{})
	if other.shared == next.shared {
		t.Fatal("a policy change must start a new balancer")
	}
}

func TestRequestKey(t *testing.T) {
	client := netip.MustParseAddrPort("192.0.2.7:5555")
	req, _ := http.NewRequest("GET", "http://web/", nil)
	req.Header.Set("X-User", "alice")
	req.AddCookie(&http.Cookie{Name: "session", Value: "s1"})
	cases := []struct {
		name string
		hash config.HashOn
		want balance.Key
	}{
		{"header", config.HashOn{Header: "x-user"}, balance.Key{HashKey: "alice", HasHashKey: true}},
		{"missing header", config.HashOn{Header: "x-none"}, balance.Key{}},
		{"cookie", config.HashOn{Cookie: "session"}, balance.Key{HashKey: "s1", HasHashKey: true}},
		{"source ip", config.HashOn{SourceIP: true}, balance.Key{HashKey: "192.0.2.7", HasHashKey: true}},
		{"none", config.HashOn{}, balance.Key{}},
	}
	for _, tc := range cases {
		b, _ := New(svc(config.PolicyRingHash, tc.hash, "10.0.0.1:80"), nil, Options{})
		if got := b.RequestKey(req, client); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestAcquireBoundsConnections(t *testing.T) {
	s := svc(config.PolicyP2CEWMA, config.HashOn{}, "10.0.0.1:80")
	s.Pool.MaxConnections = 2
	b, _ := New(s, nil, Options{})
	ep := s.Endpoints[0]
	r1, err1 := b.Acquire(ep)
	r2, err2 := b.Acquire(ep)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := b.Acquire(ep); !errors.Is(err, ErrPoolFull) || !strings.Contains(err.Error(), "max_connections") {
		t.Fatalf("third connection: %v, want ErrPoolFull with the fix", err)
	}
	r1()
	r3, err := b.Acquire(ep)
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	r2()
	r3()
}
