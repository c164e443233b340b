package registry

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/control/model"
)

func webRef1() model.ObjectRef { return model.ObjectRef{Namespace: ns, Name: "web-1"} }

// TestOverlayServices: which Services' endpoints a registered workload
// joins, and at which port.
func TestOverlayServices(t *testing.T) {
	svc := func(name, namespace string, selector map[string]string, ports ...model.ServicePort) *model.Service {
		return &model.Service{Namespace: namespace, Name: name, Selector: selector, Ports: ports}
	}
	app := map[string]string{"app": "web"}
	cases := []struct {
		name string
		svc  *model.Service
		want []string // endpoint addresses of web-1, "" port name when unnamed
	}{
		{"named target port", svc("a", ns, app, model.ServicePort{Name: "http", Port: 80}), []string{"10.0.0.1:8080 http"}},
		{"numeric target port", svc("a", ns, app, model.ServicePort{Name: "web", Port: 80, TargetPort: 9000}), []string{"10.0.0.1:9000 web"}},
		{"unnamed port", svc("a", ns, app, model.ServicePort{Port: 8080}), []string{"10.0.0.1:8080 "}},
		{"no port of that name: the service port", svc("a", ns, app, model.ServicePort{Name: "grpc", Port: 9090}), []string{"10.0.0.1:9090 grpc"}},
		{"two ports", svc("a", ns, app, model.ServicePort{Name: "http", Port: 80}, model.ServicePort{Name: "admin", Port: 9901}),
			[]string{"10.0.0.1:8080 http", "10.0.0.1:9901 admin"}},
		{"selector on two labels", svc("a", ns, map[string]string{"app": "web", "version": "v1"}, model.ServicePort{Name: "http", Port: 80}), []string{"10.0.0.1:8080 http"}},
		{"selector not matching", svc("a", ns, map[string]string{"app": "web", "version": "v2"}, model.ServicePort{Name: "http", Port: 80}), nil},
		{"another namespace", svc("a", "other", app, model.ServicePort{Name: "http", Port: 80}), nil},
		{"no selector", svc("a", ns, nil, model.ServicePort{Name: "http", Port: 80}), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, "", clocktest.New())
			if err := h.store.Apply("file:other", model.Change{Upsert: tc.svc}); err != nil {
				t.Fatal(err)
			}
			h.connect(node("web-1", "10.0.0.1"), healthy)
			var got []string
			for _, e := range h.reg.Overlay(h.store.Snapshot()).Endpoints[tc.svc.Ref()] {
				if e.Workload == "web-1" {
					got = append(got, e.Address.String()+" "+e.PortName)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("endpoints %q, want %q", got, tc.want)
			}
		})
	}
}

// TestOverlayShadowed: a file Workload of the same name written after the
// registration wins: the registered workload adds no endpoint until the
// file one is removed.
func TestOverlayShadowed(t *testing.T) {
	h := start(t, "", clocktest.New())
	h.connect(node("web-1", "10.0.0.1"), healthy)
	file := &model.Workload{Namespace: ns, Name: "web-1", ServiceAccount: "web", Address: netip.MustParseAddr("10.0.0.8"), Meshed: true}
	if err := h.store.Apply(fileSource, model.Change{Upsert: file}); err != nil {
		t.Fatal(err)
	}
	if e, ok := h.endpoint("web-1"); ok {
		t.Fatalf("shadowed registration still adds %+v", e)
	}
	if err := h.store.Apply(fileSource, model.Change{Delete: file.Key()}); err != nil {
		t.Fatal(err)
	}
	if got := h.state("web-1"); got != "ready" {
		t.Fatalf("once the file workload is gone: %s, want ready", got)
	}
}

// TestOverlayShares: the overlay of an unchanged snapshot is computed once;
// with nothing selected it is the snapshot itself; it never writes into
// the snapshot's endpoint slices.
func TestOverlayShares(t *testing.T) {
	h := start(t, "", clocktest.New())
	snap := h.store.Snapshot()
	if got := h.reg.Overlay(snap); got != snap {
		t.Fatal("nothing registered: the overlay is a copy")
	}
	a := node("web-1", "10.0.0.1")
	a.Registration.Labels = map[string]string{"app": "none"}
	h.connect(a, healthy)
	snap = h.store.Snapshot()
	if got := h.reg.Overlay(snap); got != snap {
		t.Fatal("nothing selected: the overlay is a copy")
	}
	h.connect(node("web-2", "10.0.0.2"), healthy)
	snap = h.store.Snapshot()
	before := slices.Clone(snap.Endpoints[webRef])
	o1 := h.reg.Overlay(snap)
	if o1 == snap || h.reg.Overlay(snap) != o1 {
		t.Fatal("the overlay is not computed once per snapshot")
	}
	if !slices.Equal(snap.Endpoints[webRef], before) || len(o1.Endpoints[webRef]) != len(before)+1 {
		t.Fatalf("overlay %v over %v", o1.Endpoints[webRef], snap.Endpoints[webRef])
	}
	h.reg.Request(nil, &discoveryv1.DiscoveryRequest{Health: unhealthy}) // no stream: nothing changes
	if h.reg.Overlay(snap) != o1 {
		t.Fatal("the overlay changed with nothing registered changing")
	}
}

// TestOverlayCopiesEveryField fails when model.Snapshot gains a field
// withEndpoints does not carry over.
func TestOverlayCopiesEveryField(t *testing.T) {
	snap := &model.Snapshot{}
	v := reflect.ValueOf(snap).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !f.CanSet() {
			continue // unexported: the lazily built index
		}
		switch f.Kind() {
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
		case reflect.Uint64:
			f.SetUint(7)
		default:
			t.Fatalf("model.Snapshot.%s has kind %v: teach this test and withEndpoints about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	out := reflect.ValueOf(withEndpoints(snap, map[model.ServiceRef][]model.Endpoint{webRef: {{Ready: true}}})).Elem()
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		if !v.Field(i).CanSet() || name == "Endpoints" {
			continue
		}
		if v.Field(i).Kind() == reflect.Map && v.Field(i).Pointer() != out.Field(i).Pointer() || v.Field(i).Kind() == reflect.Uint64 && out.Field(i).Uint() != 7 {
			t.Errorf("withEndpoints does not carry model.Snapshot.%s over", name)
		}
	}
}
