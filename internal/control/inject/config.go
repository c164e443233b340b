package inject

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/weft-mesh/weft/internal/proxy/capture"
)

// AnnotationError is a pod annotation whose value cannot be used. Its text
// names the annotation and says how to fix it; the webhook refuses the pod
// with it.
type AnnotationError struct {
	Annotation string
	Value      string
	Msg        string
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("annotation %s: %q: %s", e.Annotation, e.Value, e.Msg)
}

// captureAnnotations maps capture's flags to the pod annotations that set
// them.
func captureAnnotations() []struct{ flag, annotation string } {
	return []struct{ flag, annotation string }{
		{capture.FlagIncludeInboundPorts, capture.AnnotationIncludeInboundPorts},
		{capture.FlagSkipInboundPorts, capture.AnnotationSkipInboundPorts},
		{capture.FlagSkipOutboundPorts, capture.AnnotationSkipOutboundPorts},
		{capture.FlagSkipOutboundCIDRs, capture.AnnotationSkipOutboundCIDRs},
		{capture.FlagIPv6, capture.AnnotationIPv6},
	}
}

// podConfig is what the pod's annotations say, validated.
type podConfig struct {
	mode      string
	logLevel  string
	resources corev1.ResourceRequirements
	// capture holds the capture flags the annotations gave (flag -> value),
	// to pass on to weft-init.
	capture map[string]string
	// skipInbound is the parsed traffic.weft.io/skip-inbound-ports.
	skipInbound []capture.PortRange
}

// readConfig validates the pod's configuration annotations. The error joins
// one *AnnotationError per bad annotation.
func readConfig(ann map[string]string, proxyUID int64) (podConfig, error) {
	c := podConfig{mode: ModeNative, logLevel: DefaultLogLevel, capture: map[string]string{}}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, &AnnotationError{Annotation: name, Value: ann[name], Msg: fmt.Sprintf(format, args...)})
	}

	if v, ok := ann[AnnotationSidecarMode]; ok {
		switch m := strings.ToLower(strings.TrimSpace(v)); m {
		case ModeNative, ModeLegacy:
			c.mode = m
		default:
			bad(AnnotationSidecarMode, "unknown sidecar mode: use %q (an init container with restartPolicy Always, Kubernetes 1.29+) or %q (a regular container, for older clusters)", ModeNative, ModeLegacy)
		}
	}
	if v, ok := ann[AnnotationProxyLogLevel]; ok {
		switch l := strings.ToLower(strings.TrimSpace(v)); l {
		case "debug", "info", "warn", "error":
			c.logLevel = l
		default:
			bad(AnnotationProxyLogLevel, "unknown log level: use debug, info, warn or error")
		}
	}

	quantities := []struct {
		annotation, def string
		list            *corev1.ResourceList
		name            corev1.ResourceName
	}{
		{AnnotationProxyCPURequest, DefaultCPURequest, &c.resources.Requests, corev1.ResourceCPU},
		{AnnotationProxyMemoryRequest, DefaultMemoryRequest, &c.resources.Requests, corev1.ResourceMemory},
		{AnnotationProxyCPULimit, DefaultCPULimit, &c.resources.Limits, corev1.ResourceCPU},
		{AnnotationProxyMemoryLimit, DefaultMemoryLimit, &c.resources.Limits, corev1.ResourceMemory},
	}
	c.resources.Requests = corev1.ResourceList{}
	c.resources.Limits = corev1.ResourceList{}
	for _, q := range quantities {
		text := q.def
		if v, ok := ann[q.annotation]; ok {
			text = strings.TrimSpace(v)
		}
		qty, err := resource.ParseQuantity(text)
		switch {
		case err != nil:
			example := "100m or 0.5"
			if q.name == corev1.ResourceMemory {
				example = "64Mi or 1Gi"
			}
			bad(q.annotation, "not a resource quantity: give one such as %s", example)
			continue
		case qty.Sign() <= 0:
			bad(q.annotation, "give a positive quantity")
			continue
		}
		(*q.list)[q.name] = qty
	}
	for _, r := range []struct {
		name           corev1.ResourceName
		request, limit string
	}{
		{corev1.ResourceCPU, AnnotationProxyCPURequest, AnnotationProxyCPULimit},
		{corev1.ResourceMemory, AnnotationProxyMemoryRequest, AnnotationProxyMemoryLimit},
	} {
		req, okReq := c.resources.Requests[r.name]
		lim, okLim := c.resources.Limits[r.name]
		if okReq && okLim && req.Cmp(lim) > 0 {
			name := r.request
			if _, set := ann[name]; !set {
				name = r.limit
			}
			bad(name, "the %s request (%s) is above its limit (%s): raise %s or lower %s", r.name, req.String(), lim.String(), r.limit, r.request)
		}
	}

	// Capture: the same parser and validation as weft-proxy init, so that a
	// bad value is refused here with its message rather than by an init
	// container that fails.
	s := capture.DefaultSettings()
	s.ProxyUID = fmt.Sprint(proxyUID)
	for _, m := range captureAnnotations() {
		v, ok := ann[m.annotation]
		if !ok {
			continue
		}
		c.capture[m.flag] = strings.TrimSpace(v)
		switch m.flag {
		case capture.FlagIncludeInboundPorts:
			s.IncludeInboundPorts = v
		case capture.FlagSkipInboundPorts:
			s.SkipInboundPorts = v
		case capture.FlagSkipOutboundPorts:
			s.SkipOutboundPorts = v
		case capture.FlagSkipOutboundCIDRs:
			s.SkipOutboundCIDRs = v
		case capture.FlagIPv6:
			s.IPv6 = v
		}
	}
	o, err := s.Options()
	for _, e := range flatten(err) {
		var fe *capture.FieldError
		if !errors.As(e, &fe) {
			errs = append(errs, fmt.Errorf("capture settings: %w", e))
			continue
		}
		name := annotationOfFlag(fe.Flag)
		if name == "" {
			errs = append(errs, fmt.Errorf("capture settings: %w", e))
			continue
		}
		bad(name, "%s", captureFix(fe))
	}
	c.skipInbound = o.SkipInboundPorts
	return c, errors.Join(errs...)
}

func captureFix(fe *capture.FieldError) string {
	switch fe.Flag {
	case capture.FlagSkipOutboundCIDRs:
		return fe.Msg + "; give comma-separated CIDRs, e.g. 10.0.0.0/8,fd00::/8"
	case capture.FlagIPv6:
		return fe.Msg
	default:
		return fe.Msg + "; give comma-separated ports or ranges, e.g. 8080,9000-9100"
	}
}

func annotationOfFlag(flag string) string {
	for _, m := range captureAnnotations() {
		if m.flag == flag {
			return m.annotation
		}
	}
	return ""
}

// flatten returns the errors joined in err (errors.Join), or err alone.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
