package configclient

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/configversion"
)

// errBaseUnknown: an incremental response builds on a config this proxy
// does not hold.
var errBaseUnknown = errors.New("the response builds on a config this proxy does not run")

// rebuild returns the whole config an incremental response describes: the
// services of base (the config of version running) by name, with
// services_updated upserted and services_removed deleted, sorted by name,
// and every other field from the response's config. It fails when resp does
// not build on running, is inconsistent with base, or the result does not
// hash to resp's version: the proxy then asks for a full config.
//
// The result takes resp's config and shares base's unchanged services; base
// is not modified.
func rebuild(resp *discoveryv1.DiscoveryResponse, running string, base *weftv1.ProxyConfig) (*weftv1.ProxyConfig, error) {
	if base == nil || running == "" || resp.GetBaseVersion() != running {
		return nil, fmt.Errorf("base version %s, running %q: %w", resp.GetBaseVersion(), running, errBaseUnknown)
	}
	cfg := resp.GetConfig()
	if len(cfg.GetServices()) > 0 {
		return nil, fmt.Errorf("the config of an incremental response carries %d services; they belong in services_updated", len(cfg.GetServices()))
	}
	byName := make(map[string]*weftv1.Service, len(base.GetServices())+len(resp.GetServicesUpdated()))
	for _, svc := range base.GetServices() {
		if _, dup := byName[svc.GetName()]; dup {
			return nil, fmt.Errorf("the running config has two services named %q", svc.GetName())
		}
		byName[svc.GetName()] = svc
	}
	updated := make(map[string]bool, len(resp.GetServicesUpdated()))
	for _, svc := range resp.GetServicesUpdated() {
		if updated[svc.GetName()] {
			return nil, fmt.Errorf("services_updated names %q twice", svc.GetName())
		}
		updated[svc.GetName()] = true
		byName[svc.GetName()] = svc
	}
	for _, name := range resp.GetServicesRemoved() {
		if _, ok := byName[name]; !ok || updated[name] {
			return nil, fmt.Errorf("services_removed names %q, which the running config does not have or the response updates", name)
		}
		delete(byName, name)
	}
	services := make([]*weftv1.Service, 0, len(byName))
	for _, svc := range byName {
		services = append(services, svc)
	}
	slices.SortFunc(services, func(a, b *weftv1.Service) int { return cmp.Compare(a.GetName(), b.GetName()) })
	cfg.Services = services
	got, err := configversion.Of(cfg)
	if err != nil {
		return nil, fmt.Errorf("checking the rebuilt config: %w", err)
	}
	if got != resp.GetVersion() {
		return nil, fmt.Errorf("the rebuilt config is version %s, not %s", got, resp.GetVersion())
	}
	return cfg, nil
}
