package up

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
)

// Spec is what `weft up -f FILE` runs: the user's own services, each a
// command that listens on 127.0.0.1:port, with its own weft-proxy.
//
//	namespace: shop            # default "default"
//	entry: web                 # optional: exposed through an entry proxy
//	services:
//	- name: web
//	  command: ["./web", "--listen", "127.0.0.1:8080", "--api", "${WEFT_SERVICE_API}"]
//	  port: 8080
//	  protocol: http1          # http1, http2, grpc or opaque
//	  calls: [api]             # each call's local address is in WEFT_SERVICE_<NAME>
//	- name: api
//	  command: ["./api", "--listen", "127.0.0.1:9090"]
//	  port: 9090
//	  protocol: grpc
type Spec struct {
	Namespace string    `json:"namespace,omitempty"`
	Entry     string    `json:"entry,omitempty"`
	Services  []Service `json:"services"`
	// Trickle sends demo traffic to the entry (the built-in demo only).
	Trickle bool `json:"-"`
}

// Service is one of the user's services.
type Service struct {
	Name     string   `json:"name"`
	Command  []string `json:"command"`
	Port     int      `json:"port"`
	Protocol string   `json:"protocol"`
	Calls    []string `json:"calls,omitempty"`
}

var dnsLabel = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// LoadSpec reads and checks a spec file; every problem names the field.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var s Spec
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

func (s *Spec) check() error {
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	var problems []string
	add := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	if !dnsLabel.MatchString(s.Namespace) {
		add("namespace: %q is not a DNS label (lowercase letters, digits, '-')", s.Namespace)
	}
	if len(s.Services) == 0 {
		add("services: none; list at least one service with its command, port and protocol")
	}
	names := map[string]bool{}
	for i, svc := range s.Services {
		f := fmt.Sprintf("services[%d]", i)
		switch {
		case !dnsLabel.MatchString(svc.Name) || svc.Name == "entry":
			add("%s.name: %q is not a DNS label, or is the reserved name entry", f, svc.Name)
		case names[svc.Name]:
			add("%s.name: %q is listed twice", f, svc.Name)
		}
		names[svc.Name] = true
		if len(svc.Command) == 0 {
			add("%s.command: empty; give the program and its arguments, e.g. [\"./%s\", \"--port\", \"8080\"]", f, svc.Name)
		}
		if svc.Port < 1 || svc.Port > 65535 {
			add("%s.port: %d is not a TCP port; give the port the command listens on (127.0.0.1)", f, svc.Port)
		}
		if _, _, ok := protocolsOf(svc.Protocol); !ok {
			add("%s.protocol: %q; use http1, http2, grpc or opaque", f, svc.Protocol)
		}
	}
	for i, svc := range s.Services {
		for j, c := range svc.Calls {
			if !names[c] || c == svc.Name {
				add("services[%d].calls[%d]: %q is not another service of this file", i, j, c)
			}
		}
	}
	if s.Entry != "" && !names[s.Entry] {
		add("entry: %q is not a service of this file", s.Entry)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// protocolsOf maps a spec protocol to the Service's appProtocol and the
// workload port's protocol.
func protocolsOf(p string) (appProtocol, workload string, ok bool) {
	switch p {
	case "http1":
		return "http", "http1", true
	case "http2":
		return "http2", "http2", true
	case "grpc":
		return "grpc", "grpc", true
	case "opaque":
		return "tcp", "opaque", true
	}
	return "", "", false
}

// envName is the variable that holds a called service's local address.
func envName(service string) string {
	return "WEFT_SERVICE_" + strings.ToUpper(strings.ReplaceAll(service, "-", "_"))
}

// sortedCalls are a service's calls in the order the control plane assigns
// the proxy's explicit listeners: by the proxy-side service name.
func (s *Spec) sortedCalls(svc Service) []Service {
	var out []Service
	for _, c := range svc.Calls {
		for _, t := range s.Services {
			if t.Name == c {
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, func(a, b Service) int {
		return strings.Compare(s.serviceName(a), s.serviceName(b))
	})
	return out
}

func (s *Spec) serviceName(svc Service) string {
	return translate.ServiceName(model.ServiceRef{Namespace: s.Namespace, Name: svc.Name}, uint16(svc.Port))
}
