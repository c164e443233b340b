package kube

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/internal/control/model"
)

func TestParseOpaquePorts(t *testing.T) {
	for _, tc := range []struct {
		in      string
		singles string
		ranges  string
		errs    string
	}{
		{"", "[]", "[]", ""},
		{"3306", "[3306]", "[]", ""},
		{" 3306 , 5432,", "[3306 5432]", "[]", ""},
		{"8000-8010", "[]", "[[8000 8010]]", ""},
		{"0, 65536, x", "[]", "[]", `"0" is not a port (1-65535); "65536" is not a port (1-65535); "x" is not a port (1-65535)`},
		{"10-5, 1-65535", "[]", "[]", `"10-5" is not a range of ports (low-high, 1-65535); "1-65535" spans more than 1024 ports`},
		{"1-1024, 80", "[80]", "[[1 1024]]", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, r, errs := parseOpaquePorts(tc.in)
			got := fmt.Sprintf("%v %v %s", orEmpty(s), orEmptyRanges(r), strings.Join(errs, "; "))
			want := fmt.Sprintf("%s %s %s", tc.singles, tc.ranges, tc.errs)
			if got != want {
				t.Errorf("parseOpaquePorts(%q) = %s, want %s", tc.in, got, want)
			}
		})
	}
}

func orEmpty(s []uint16) []uint16 {
	if s == nil {
		return []uint16{}
	}
	return s
}

func orEmptyRanges(r [][2]uint16) [][2]uint16 {
	if r == nil {
		return [][2]uint16{}
	}
	return r
}

func TestMeshed(t *testing.T) {
	pod := func(labels, annotations map[string]string, containers ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations}}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		}
		return p
	}
	ns := func(labels, annotations map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations}}
	}
	enabled := map[string]string{InjectKey: "enabled"}
	disabled := map[string]string{InjectKey: "disabled"}
	nativeSidecar := &corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: ProxyContainer, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}}}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		ns   *corev1.Namespace
		want bool
	}{
		{"nothing", pod(nil, nil, "app"), ns(nil, nil), false},
		{"unknown namespace", pod(nil, nil, "app"), nil, false},
		{"pod label", pod(enabled, nil, "app"), nil, true},
		{"pod annotation", pod(nil, enabled, "app"), nil, true},
		{"namespace label", pod(nil, nil, "app"), ns(enabled, nil), true},
		{"namespace annotation", pod(nil, nil, "app"), ns(nil, enabled), true},
		{"pod opts out", pod(disabled, nil, "app"), ns(enabled, nil), false},
		{"pod annotation beats its label", pod(enabled, disabled, "app"), nil, false},
		{"namespace: a label enables", pod(nil, nil, "app"), ns(enabled, disabled), true},
		{"proxy container", pod(nil, nil, "app", ProxyContainer), nil, true},
		{"proxy container, whatever the label", pod(disabled, nil, "app", ProxyContainer), nil, true},
		{"native sidecar", nativeSidecar, nil, true},
		{"another value", pod(map[string]string{InjectKey: "yes"}, nil, "app"), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := meshed(tc.pod, tc.ns); got != tc.want {
				t.Errorf("meshed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGrants(t *testing.T) {
	grant := func(fromKind, fromNS string, to *string) gwv1.ReferenceGrantSpec {
		g := gwv1.ReferenceGrantSpec{
			From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: gwv1.Kind(fromKind), Namespace: gwv1.Namespace(fromNS)}},
			To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: "Service"}},
		}
		if to != nil {
			g.To[0].Name = ptr.To(gwv1.ObjectName(*to))
		}
		return g
	}
	for _, tc := range []struct {
		name      string
		g         gwv1.ReferenceGrantSpec
		from, ns  string
		to        string
		permitted bool
	}{
		{"every service", grant("HTTPRoute", "shop", nil), "HTTPRoute", "shop", "db", true},
		{"that service", grant("HTTPRoute", "shop", ptr.To("db")), "HTTPRoute", "shop", "db", true},
		{"another service", grant("HTTPRoute", "shop", ptr.To("db")), "HTTPRoute", "shop", "cache", false},
		{"another namespace", grant("HTTPRoute", "shop", nil), "HTTPRoute", "ops", "db", false},
		{"another route kind", grant("HTTPRoute", "shop", nil), "GRPCRoute", "shop", "db", false},
		{"to another kind", gwv1.ReferenceGrantSpec{
			From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "shop"}},
			To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: "Secret"}}}, "HTTPRoute", "shop", "db", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := grants(tc.g, tc.from, tc.ns, tc.to); got != tc.permitted {
				t.Errorf("grants = %v, want %v", got, tc.permitted)
			}
		})
	}
}

// TestSliceEndpoints: the merge of a Service's EndpointSlices.
func TestSliceEndpoints(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("weft.local")
	pods := map[string]*corev1.Pod{
		"web-1": {ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", Labels: map[string]string{InjectKey: "enabled"}}, Spec: corev1.PodSpec{ServiceAccountName: "web"}},
		"web-2": {ObjectMeta: metav1.ObjectMeta{Name: "web-2", Namespace: "shop"}},
	}
	podOf := func(ns, name string) (*corev1.Pod, *corev1.Namespace) { return pods[name], nil }
	ep := func(addr, pod string, ready, serving, terminating *bool) discoveryv1.Endpoint {
		e := discoveryv1.Endpoint{Addresses: []string{addr}, Zone: ptr.To("zone-a"),
			Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
		if pod != "" {
			e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: pod}
		}
		return e
	}
	slice := func(name string, typ discoveryv1.AddressType, port string, number int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, AddressType: typ,
			Ports: []discoveryv1.EndpointPort{{Name: ptr.To(port), Port: ptr.To(number)}}, Endpoints: eps}
	}
	yes, no := ptr.To(true), ptr.To(false)
	svc := func(name string) *model.Service {
		return &model.Service{Namespace: "shop", Name: "web", Ports: []model.ServicePort{{Name: name, Port: 80}}}
	}
	for _, tc := range []struct {
		name        string
		svc         *model.Service
		targetNames []string
		slices      []*discoveryv1.EndpointSlice
		want        string
		wantTarget  uint16
		problems    int
	}{
		{name: "ready and meshed, plain, conditions unset",
			svc:    svc("http"),
			slices: []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, "http", 8080, ep("10.0.0.2", "web-2", nil, nil, nil), ep("10.0.0.1", "web-1", yes, yes, no))},
			want:   "10.0.0.1:8080 http spiffe://weft.local/ns/shop/sa/web zone-a ready web-1\n10.0.0.2:8080 http - zone-a ready web-2"},
		{name: "serving beats ready; terminating",
			svc:    svc("http"),
			slices: []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, "http", 8080, ep("10.0.0.1", "web-1", no, yes, yes), ep("10.0.0.2", "", yes, no, no))},
			want:   "10.0.0.1:8080 http spiffe://weft.local/ns/shop/sa/web zone-a ready terminating web-1\n10.0.0.2:8080 http - zone-a not-ready -"},
		{name: "an endpoint in two slices: the ready copy",
			svc: svc("http"),
			slices: []*discoveryv1.EndpointSlice{
				slice("a", discoveryv1.AddressTypeIPv4, "http", 8080, ep("10.0.0.1", "web-1", no, no, no)),
				slice("b", discoveryv1.AddressTypeIPv4, "http", 8080, ep("10.0.0.1", "web-1", yes, yes, no))},
			want: "10.0.0.1:8080 http spiffe://weft.local/ns/shop/sa/web zone-a ready web-1"},
		{name: "FQDN slices and ports the service lacks are ignored",
			svc: svc("http"),
			slices: []*discoveryv1.EndpointSlice{
				slice("a", discoveryv1.AddressTypeFQDN, "http", 8080, ep("db.example.com", "", yes, yes, no)),
				slice("b", discoveryv1.AddressTypeIPv4, "admin", 9000, ep("10.0.0.1", "web-1", yes, yes, no))},
			want: ""},
		{name: "an endpoint of a pod not known is left out",
			svc:    svc("http"),
			slices: []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, "http", 8080, ep("10.0.0.9", "web-9", yes, yes, no), ep("10.0.0.2", "web-2", yes, yes, no))},
			want:   "10.0.0.2:8080 http - zone-a ready web-2"},
		{name: "IPv6",
			svc:    svc("http"),
			slices: []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv6, "http", 8080, ep("fd00::1", "web-2", yes, yes, no))},
			want:   "[fd00::1]:8080 http - zone-a ready web-2"},
		{name: "unnamed port, named target: the slices' number",
			svc: svc(""), targetNames: []string{"http"},
			slices:     []*discoveryv1.EndpointSlice{slice("a", discoveryv1.AddressTypeIPv4, "", 8080, ep("10.0.0.2", "web-2", yes, yes, no))},
			want:       "10.0.0.2:8080 - - zone-a ready web-2",
			wantTarget: 8080},
		{name: "unnamed port, named target of two numbers: the first slice's",
			svc: svc(""), targetNames: []string{"http"},
			slices: []*discoveryv1.EndpointSlice{
				slice("a", discoveryv1.AddressTypeIPv4, "", 8080, ep("10.0.0.2", "web-2", yes, yes, no)),
				slice("b", discoveryv1.AddressTypeIPv4, "", 9090, ep("10.0.0.1", "web-1", yes, yes, no))},
			want:       "10.0.0.2:8080 - - zone-a ready web-2",
			wantTarget: 8080, problems: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eps, problems := sliceEndpoints(tc.svc, tc.targetNames, tc.slices, podOf, td)
			var lines []string
			for _, e := range eps {
				st := "ready"
				if !e.Ready {
					st = "not-ready"
				}
				if e.Terminating {
					st += " terminating"
				}
				lines = append(lines, fmt.Sprintf("%s %s %s %s %s %s", e.Address, dash(e.PortName), dash(e.Identity), dash(e.Zone), st, dash(e.Workload)))
			}
			if got := strings.Join(lines, "\n"); got != tc.want {
				t.Errorf("endpoints:\n%s\nwant:\n%s", got, tc.want)
			}
			if tc.wantTarget != 0 && tc.svc.Ports[0].TargetPort != tc.wantTarget {
				t.Errorf("target port %d, want %d", tc.svc.Ports[0].TargetPort, tc.wantTarget)
			}
			if len(problems) != tc.problems {
				t.Errorf("problems %v, want %d", problems, tc.problems)
			}
		})
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// TestSetCondition: a condition keeps its transition time while its status
// does not change.
func TestSetCondition(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	now := metav1.NewTime(then.Add(time.Hour))
	existing := []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: then}}
	for _, tc := range []struct {
		name string
		c    metav1.Condition
		want metav1.Time
	}{
		{"same status, new message", metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "other"}, then},
		{"new status", metav1.Condition{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "Invalid"}, now},
		{"new type", metav1.Condition{Type: "ResolvedRefs", Status: metav1.ConditionTrue, Reason: "ResolvedRefs"}, now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := setCondition(existing, tc.c, now).LastTransitionTime; !got.Equal(&tc.want) {
				t.Errorf("LastTransitionTime %v, want %v", got, tc.want)
			}
		})
	}
}
