package sidecar

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/backend"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/detect"
	"github.com/weft-mesh/weft/internal/proxy/httpproxy"
	"github.com/weft-mesh/weft/internal/proxy/metrics"
)

// state is one generation of running configuration.
type state struct {
	cfg      *config.Compiled
	backends map[string]*backend.Backend
	explicit map[string]config.Explicit // by listener address
	detector *detect.Detector
	env      *httpproxy.Env
	loadedAt time.Time
}

// newState builds the running state for cfg, carrying balancer state and the
// protocol detector's memory over from prev when they still apply.
func (p *Proxy) newState(cfg *config.Compiled, prev *state) (*state, error) {
	s := &state{
		cfg:      cfg,
		backends: make(map[string]*backend.Backend, len(cfg.Services)),
		explicit: make(map[string]config.Explicit, len(cfg.Outbound.Explicit)),
		loadedAt: time.Now(),
	}
	s.env = &httpproxy.Env{
		Up:        p.up,
		Metrics:   p.metrics,
		Log:       p.log,
		AccessLog: cfg.AccessLog,
		TCPIdle:   relayOptions(cfg),
		ErrorLog:  p.errorLog,
		Buffers:   p.buffers,
		Tunnels:   &p.tunnels,
	}
	for name, svc := range cfg.Services {
		var old *backend.Backend
		if prev != nil {
			old = prev.backends[name]
		}
		b, err := backend.New(svc, old, backend.Options{
			MirrorSend: func(service string) func(context.Context, *http.Request) (*http.Response, error) {
				return s.env.MirrorSender(p.lookup, service)
			},
			OnEject: func(service, addr, reason string) {
				p.metrics.PolicyDecision(metrics.Labels{Direction: "outbound", Service: service}, "breaker", "ejected")
				p.log.Warn("endpoint ejected by outlier detection", "service", service, "endpoint", addr, "reason", reason)
			},
		})
		if err != nil {
			return nil, fmt.Errorf("building service %s: %w", name, err)
		}
		s.backends[name] = b
	}
	for _, e := range cfg.Outbound.Explicit {
		s.explicit[e.Address] = e
	}
	if prev != nil && sameDetection(prev.cfg, cfg) {
		s.detector = prev.detector
	} else {
		s.detector = detect.New(detect.Config{Timeout: cfg.DetectTimeout, OpaquePorts: cfg.OpaquePorts})
	}
	return s, nil
}

func sameDetection(a, b *config.Compiled) bool {
	return a.DetectTimeout == b.DetectTimeout && slices.Equal(a.OpaquePorts, b.OpaquePorts)
}

// lookup finds a service's backend in the running state.
func (p *Proxy) lookup(name string) *backend.Backend {
	return p.state.Load().backends[name]
}
