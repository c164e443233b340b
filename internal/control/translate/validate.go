package translate

import (
	"errors"
	"slices"
	"strings"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/config"
)

// validate runs the proxy's own validation on one service (its routes or
// policies): a config holding it, and a stub for every service its routes
// name, must compile.
func validate(svc *weftv1.Service) error {
	names := []string{svc.GetName()}
	for _, r := range svc.GetRoutes() {
		for _, be := range r.GetBackends() {
			names = append(names, be.GetService())
		}
		for _, m := range r.GetMirrors() {
			names = append(names, m.GetService())
		}
	}
	slices.Sort(names)
	cfg := &weftv1.ProxyConfig{Outbound: &weftv1.Outbound{TransparentAddress: TransparentAddress}}
	for _, n := range slices.Compact(names) {
		if n == svc.GetName() {
			cfg.Services = append(cfg.Services, svc)
		} else {
			cfg.Services = append(cfg.Services, &weftv1.Service{Name: n})
		}
	}
	_, err := config.Compile(cfg)
	return err
}

// validateInbound runs the proxy's own validation on an inbound listener
// (its authorization), in a config that is otherwise valid.
func validateInbound(in *weftv1.Inbound) error {
	cfg := &weftv1.ProxyConfig{
		Tls:      &weftv1.TLS{CertFile: "cert.pem", KeyFile: "key.pem", TrustBundleFile: "bundle.pem"},
		Inbound:  in,
		Outbound: &weftv1.Outbound{TransparentAddress: TransparentAddress},
	}
	_, err := config.Compile(cfg)
	return err
}

// errorLines splits the proxy's verdict into its problems.
func errorLines(err error) []string {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var lines []string
		for _, e := range joined.Unwrap() {
			lines = append(lines, e.Error())
		}
		return lines
	}
	return strings.Split(err.Error(), "\n")
}

// reportRejection records each line of the proxy's verdict as a problem of
// obj, its field path made relative to the object (a route's routes[i] is
// its rules[i]).
func reportRejection(b *builder, obj string, err error, consequence string) {
	if err == nil {
		return
	}
	for _, l := range errorLines(err) {
		field, msg, ok := strings.Cut(l, ": ")
		if !ok {
			field, msg = "", l
		}
		// Drop the checked service's own path ("services[i].").
		if rest, ok := strings.CutPrefix(field, "services["); ok {
			if _, after, ok := strings.Cut(rest, "]."); ok {
				field = after
			}
		}
		if rest, ok := strings.CutPrefix(field, "routes"); ok {
			field = "rules" + rest
		}
		if field == "rules" && strings.HasPrefix(msg, "routing table of ") {
			// The route table's verdict: one "route <ns/name> rule <i>:
			// <field>: <problem>" line per problem.
			if _, list, ok := strings.Cut(msg, " problems: "); ok {
				for _, l := range strings.Split(list, "\n") {
					f, m := ruleProblem(l)
					b.problem(obj, f, "%s; %s", m, consequence)
				}
				continue
			}
		}
		b.problem(obj, field, "%s; %s", msg, consequence)
	}
}

// ruleProblem splits a route table problem into the field, relative to the
// route, and the message; a line of another form is kept whole.
func ruleProblem(line string) (field, msg string) {
	if _, after, ok := strings.Cut(line, " rule "); ok {
		if index, rest, ok := strings.Cut(after, ": "); ok {
			if f, m, ok := strings.Cut(rest, ": "); ok {
				return "rules[" + index + "]." + f, m
			}
		}
	}
	return "rules", line
}
