package up

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// plan is the layout of a spec on this machine: the ports of the control
// plane and of every proxy.
type plan struct {
	spec  *Spec
	cp    int
	in    map[string]int // inbound listener of each service's proxy
	admin map[string]int // admin server of each proxy, "entry" included
	base  map[string]int // first explicit listener of each proxy that calls others
}

func newPlan(spec *Spec) (plan, error) {
	p := plan{spec: spec, in: map[string]int{}, admin: map[string]int{}, base: map[string]int{}}
	ports, err := freePorts(2 + 2*len(spec.Services))
	if err != nil {
		return p, err
	}
	p.cp, p.admin["entry"] = ports[0], ports[1]
	for i, svc := range spec.Services {
		p.in[svc.Name], p.admin[svc.Name] = ports[2+2*i], ports[3+2*i]
		if len(svc.Calls) > 0 {
			if p.base[svc.Name], err = freeRange(len(svc.Calls)); err != nil {
				return p, err
			}
		}
	}
	if spec.Entry != "" {
		if p.base["entry"], err = freeRange(1); err != nil {
			return p, err
		}
	}
	return p, nil
}

// env is a service's environment: each called service's local address.
func (p plan) env(svc Service) []string {
	var env []string
	for i, c := range p.spec.sortedCalls(svc) {
		env = append(env, fmt.Sprintf("%s=127.0.0.1:%d", envName(c.Name), p.base[svc.Name]+i))
	}
	return env
}

// watches is what a service's proxy asks the control plane for.
func (p plan) watches(svc Service) string {
	var w []string
	for _, c := range svc.Calls {
		w = append(w, p.spec.Namespace+"/"+c)
	}
	return strings.Join(w, ",")
}

// mesh is the spec as mesh resources: a Service and a Workload each.
func (p plan) mesh() string {
	var b strings.Builder
	b.WriteString("# The mesh of weft up. Edit and save: the control plane applies changes live.\n")
	for _, svc := range p.spec.Services {
		app, proto, _ := protocolsOf(svc.Protocol)
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: app, port: %[3]d, targetPort: app, appProtocol: %[4]s}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: %[1]s-1, namespace: %[2]s, labels: {app: %[1]s}}
spec:
  address: 127.0.0.1
  serviceAccount: %[1]s
  ports: [{name: app, port: %[3]d, protocol: %[5]s}]
  proxy: {inboundPort: %[6]d}
`, svc.Name, p.spec.Namespace, svc.Port, app, proto, p.in[svc.Name])
	}
	return b.String()
}

// hints prints what to try next.
func (p plan) hints(w io.Writer, dir string) {
	what := "your services"
	if p.spec.Trickle {
		what = "three demo services (frontend over HTTP/1.1, catalog over gRPC, inventory over TCP)"
	}
	fmt.Fprintf(w, "\nweft is up: the control plane and %s, each with its own weft-proxy, mTLS between all of them", what)
	if p.spec.Trickle {
		fmt.Fprint(w, ", and a trickle of demo traffic")
	}
	fmt.Fprint(w, ".\n\n")
	if p.spec.Entry != "" {
		fmt.Fprintf(w, "  curl %s    # %s, through the mesh\n", p.entryURL(), p.spec.Entry)
	}
	first := p.spec.Services[0].Name
	if p.spec.Entry != "" {
		first = p.spec.Entry
	}
	fmt.Fprintf(w, "  watch -n1 'curl -s http://127.0.0.1:%d/metrics | grep ^weft_requests_total'   # live requests per service\n", p.admin[first])
	fmt.Fprintf(w, "  curl http://127.0.0.1:%d/config_dump    # what %s's proxy runs\n\n", p.admin[first], first)
	var eps []string
	if p.spec.Entry != "" {
		eps = append(eps, fmt.Sprintf("entry 127.0.0.1:%d", p.admin["entry"]))
	}
	for _, svc := range p.spec.Services {
		eps = append(eps, fmt.Sprintf("%s 127.0.0.1:%d", svc.Name, p.admin[svc.Name]))
	}
	fmt.Fprintf(w, "Metrics endpoints (Prometheus): %s\n", strings.Join(eps, ", "))
	fmt.Fprintf(w, "The mesh is the file %s: add an HTTPRoute there to split or shift traffic (docs/universal-mode.md).\n", filepath.Join(dir, "mesh", "mesh.yaml"))
	fmt.Fprintf(w, "Logs are in %s. Press Ctrl-C to stop everything.\n", filepath.Join(dir, "logs"))
}

func (p plan) entryURL() string { return fmt.Sprintf("http://127.0.0.1:%d/", p.base["entry"]) }

// demoSpec is the built-in demo, run with the weft-demo binary.
func demoSpec(demo string) (*Spec, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	addr := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
	s := &Spec{
		Namespace: "demo",
		Entry:     "frontend",
		Trickle:   true,
		Services: []Service{
			{Name: "frontend", Port: ports[0], Protocol: "http1", Calls: []string{"catalog", "inventory"},
				Command: []string{demo, "frontend", "--listen", addr(ports[0]),
					"--catalog", "${" + envName("catalog") + "}", "--inventory", "${" + envName("inventory") + "}"}},
			{Name: "catalog", Port: ports[1], Protocol: "grpc", Command: []string{demo, "catalog", "--listen", addr(ports[1])}},
			{Name: "inventory", Port: ports[2], Protocol: "opaque", Command: []string{demo, "inventory", "--listen", addr(ports[2])}},
		},
	}
	return s, s.check()
}
