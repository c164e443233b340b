package model

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

func TestSecurityIndex(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	web := ServiceRef{"shop", "web"}
	legacy := ServiceRef{"shop", "legacy"}
	other := ServiceRef{"ops", "web"}
	ep := func(svc ServiceRef, addr, workload string) Endpoint {
		return Endpoint{Service: svc, Address: netip.MustParseAddrPort(addr), Workload: workload}
	}
	s := NewStore()
	if err := s.Apply("a",
		Change{Upsert: &AuthorizationPolicy{Namespace: "shop", Name: "z", Created: t0}},
		Change{Upsert: &AuthorizationPolicy{Namespace: "shop", Name: "y", Created: t0.Add(time.Hour)}},
		Change{Upsert: &AuthorizationPolicy{Namespace: "shop", Name: "x", Created: t0}},
		Change{Upsert: &AuthorizationPolicy{Namespace: "ops", Name: "a", Created: t0}},
		Change{Upsert: &MutualTLSPolicy{Namespace: "shop", Name: "b", Created: t0.Add(time.Hour)}},
		Change{Upsert: &MutualTLSPolicy{Namespace: "shop", Name: "c", Created: t0}},
		Change{Upsert: &EndpointSet{Service: web, Endpoints: []Endpoint{
			ep(web, "10.0.0.2:8080", "web-1"), ep(web, "10.0.0.1:8080", "web-0"), ep(web, "10.0.0.1:9090", "web-0"),
		}}},
		// No workload named: matched by address, in the workload's namespace only.
		Change{Upsert: &EndpointSet{Service: legacy, Endpoints: []Endpoint{ep(legacy, "10.0.0.1:7000", "")}}},
		Change{Upsert: &EndpointSet{Service: other, Endpoints: []Endpoint{ep(other, "10.0.0.1:8080", ""), ep(other, "10.0.0.9:8080", "web-0")}}},
	); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	names := func(ps []*AuthorizationPolicy) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	if got, want := names(snap.AuthorizationPoliciesIn("shop")), []string{"x", "z", "y"}; !slices.Equal(got, want) {
		t.Errorf("AuthorizationPoliciesIn(shop) = %v, want %v (oldest first, then by name)", got, want)
	}
	if got := snap.AuthorizationPoliciesIn("nope"); len(got) != 0 {
		t.Errorf("AuthorizationPoliciesIn(nope) = %v", names(got))
	}
	var mtls []string
	for _, p := range snap.MutualTLSPoliciesIn("shop") {
		mtls = append(mtls, p.Name)
	}
	if want := []string{"c", "b"}; !slices.Equal(mtls, want) {
		t.Errorf("MutualTLSPoliciesIn(shop) = %v, want %v", mtls, want)
	}
	tests := []struct {
		w    *Workload
		want []string
	}{
		{&Workload{Namespace: "shop", Name: "web-0", Address: netip.MustParseAddr("10.0.0.1")},
			[]string{"shop/legacy 10.0.0.1:7000", "shop/web 10.0.0.1:8080", "shop/web 10.0.0.1:9090"}},
		{&Workload{Namespace: "shop", Name: "web-1"}, []string{"shop/web 10.0.0.2:8080"}},
		{&Workload{Namespace: "ops", Name: "web-0", Address: netip.MustParseAddr("10.0.0.1")},
			[]string{"ops/web 10.0.0.1:8080", "ops/web 10.0.0.9:8080"}},
		{&Workload{Namespace: "shop", Name: "none", Address: netip.MustParseAddr("10.9.9.9")}, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, e := range snap.EndpointsOf(tt.w) {
			got = append(got, fmt.Sprintf("%s %s", e.Service, e.Address))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("EndpointsOf(%s) = %q, want %q", tt.w.Ref(), got, tt.want)
		}
	}
}

func TestSecurityPoliciesAreCopied(t *testing.T) {
	s := NewStore()
	az := &AuthorizationPolicy{Namespace: "ns", Name: "az", TargetRefs: []PolicyTargetRef{{Kind: TargetService, Name: "web"}},
		Rules: []AuthorizationRule{{Ports: []uint16{80}, From: &weftv1.AuthorizationSource{Namespaces: []string{"a"}},
			To: &weftv1.AuthorizationTarget{Methods: []string{"GET"}}}}}
	mt := &MutualTLSPolicy{Namespace: "ns", Name: "mt", Mode: MTLSStrict, Ports: []PortMTLS{{Port: 80, Mode: MTLSPermissive}}}
	ns := &Namespace{Name: "ns", Labels: map[string]string{"a": "b"}}
	if err := s.Apply("a", Change{Upsert: az}, Change{Upsert: mt}, Change{Upsert: ns}); err != nil {
		t.Fatal(err)
	}
	az.TargetRefs[0].Name = "changed"
	az.Rules[0].Ports[0] = 1
	az.Rules[0].From.Namespaces[0] = "changed"
	az.Rules[0].To.Methods[0] = "POST"
	mt.Ports[0].Mode = MTLSStrict
	ns.Labels["a"] = "changed"
	snap := s.Snapshot()
	got := snap.AuthorizationPolicies[ObjectRef{"ns", "az"}]
	if got.TargetRefs[0].Name != "web" || got.Rules[0].Ports[0] != 80 || got.Rules[0].From.GetNamespaces()[0] != "a" ||
		got.Rules[0].To.GetMethods()[0] != "GET" {
		t.Errorf("the stored authorization policy changed through the caller's object: %+v", got)
	}
	if m := snap.MutualTLSPolicies[ObjectRef{"ns", "mt"}].Ports[0].Mode; m != MTLSPermissive {
		t.Errorf("the stored mTLS policy changed through the caller's object: port mode %s", m)
	}
	if l := snap.Namespaces["ns"].Labels["a"]; l != "b" {
		t.Errorf("the stored namespace changed through the caller's object: label %s", l)
	}
	if k := (Key{Kind: KindNamespace, Name: "ns"}).String(); k != "Namespace ns" {
		t.Errorf("a namespace's key reads %q", k)
	}
}
