package install

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// Values are the settings of an install: the Helm chart's values.yaml and
// `weft install --values` read the same YAML into them, so a values file
// means the same to both. The namespace is not a value: Helm takes it from
// the release, `weft install` from --namespace.
type Values struct {
	Image       Image       `json:"image"`
	Replicas    int32       `json:"replicas"`
	TrustDomain string      `json:"trustDomain"`
	LogLevel    string      `json:"logLevel"`
	Resources   Resources   `json:"resources"`
	CertManager CertManager `json:"certManager"`
	Webhook     Webhook     `json:"webhook"`
}

// Image says where the images come from: <registry>/weft:<tag> for the
// control plane and <registry>/weft-proxy:<tag> for the injected proxy.
type Image struct {
	Registry   string `json:"registry"`
	Tag        string `json:"tag"`
	PullPolicy string `json:"pullPolicy"`
}

// Resources of the control plane's container.
type Resources struct {
	Requests ResourceList `json:"requests"`
	Limits   ResourceList `json:"limits"`
}

// ResourceList is a CPU and a memory quantity, e.g. "100m" and "128Mi".
type ResourceList struct {
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
}

// CertManager makes cert-manager issue and renew weft's issuer (a CA
// Certificate into the weft-ca Secret) instead of the Secret `weft install`
// generates.
type CertManager struct {
	Enabled bool `json:"enabled"`
}

// Webhook configures the sidecar-injection webhook's registration.
type Webhook struct {
	// FailurePolicy is what the API server does with a pod when the webhook
	// cannot be reached: Ignore (create it without a proxy) or Fail (refuse
	// it). See docs/install.md.
	FailurePolicy string `json:"failurePolicy"`
	// TimeoutSeconds bounds each call, 1 to 30.
	TimeoutSeconds int32 `json:"timeoutSeconds"`
}

// Defaults of Values.
const (
	DefaultNamespace      = "weft-system"
	DefaultReplicas       = 2
	DefaultTrustDomain    = "weft.local"
	DefaultFailurePolicy  = "Fail"
	DefaultWebhookTimeout = 5
)

// DefaultValues are the values of an install nobody configured.
func DefaultValues() Values {
	return Values{
		Image:       Image{Registry: DefaultRegistry(), Tag: DefaultTag(), PullPolicy: "IfNotPresent"},
		Replicas:    DefaultReplicas,
		TrustDomain: DefaultTrustDomain,
		LogLevel:    "info",
		Resources: Resources{
			Requests: ResourceList{CPU: "100m", Memory: "128Mi"},
			Limits:   ResourceList{CPU: "1", Memory: "512Mi"},
		},
		Webhook: Webhook{FailurePolicy: DefaultFailurePolicy, TimeoutSeconds: DefaultWebhookTimeout},
	}
}

// ParseValues reads a values file over base: what the file sets replaces
// base's value, the rest stays. Unknown keys are errors, so that a typo is
// not silently ignored.
func ParseValues(data []byte, base Values) (Values, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return base, nil
	}
	v := base
	if err := yaml.UnmarshalStrict(data, &v); err != nil {
		return Values{}, fmt.Errorf("reading values: %w", err)
	}
	return v, nil
}

// ReadValuesFile is ParseValues of a file.
func ReadValuesFile(path string, base Values) (Values, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Values{}, fmt.Errorf("reading the values file: %w", err)
	}
	v, err := ParseValues(b, base)
	if err != nil {
		return Values{}, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Allowed values of enumerated fields (functions, not variables, so that
// nothing can change them).
func pullPolicies() []string    { return []string{"Always", "IfNotPresent", "Never"} }
func logLevels() []string       { return []string{"debug", "info", "warn", "error"} }
func failurePolicies() []string { return []string{"Ignore", "Fail"} }

// MinReplicas is the least number of control plane replicas: one of them
// may be evicted (the PodDisruptionBudget keeps one) or restarting while the
// other serves and leads.
const MinReplicas = 2

// Validate checks v; the errors name the field as it is written in a values
// file.
func (v Values) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if !validRegistry(v.Image.Registry) {
		bad("image.registry", "%q is not a registry and path such as ghcr.io/weft-mesh (no tag, no digest)", v.Image.Registry)
	}
	if !validTag(v.Image.Tag) {
		bad("image.tag", "%q is not an image tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')", v.Image.Tag)
	}
	if !slices.Contains(pullPolicies(), v.Image.PullPolicy) {
		bad("image.pullPolicy", "%q is not one of %s", v.Image.PullPolicy, strings.Join(pullPolicies(), ", "))
	}
	if v.Replicas < MinReplicas {
		bad("replicas", "%d: the control plane runs at least %d replicas (one leads, the other takes over; the PodDisruptionBudget keeps one during node drains)", v.Replicas, MinReplicas)
	}
	if _, err := spiffeid.TrustDomainFromString(v.TrustDomain); err != nil || strings.Contains(v.TrustDomain, "/") {
		bad("trustDomain", "%q is not a trust domain: use a lower-case DNS-like name such as weft.local", v.TrustDomain)
	}
	if !slices.Contains(logLevels(), v.LogLevel) {
		bad("logLevel", "%q is not one of %s", v.LogLevel, strings.Join(logLevels(), ", "))
	}
	for _, q := range []struct{ field, value string }{
		{"resources.requests.cpu", v.Resources.Requests.CPU},
		{"resources.requests.memory", v.Resources.Requests.Memory},
		{"resources.limits.cpu", v.Resources.Limits.CPU},
		{"resources.limits.memory", v.Resources.Limits.Memory},
	} {
		if _, err := resource.ParseQuantity(q.value); err != nil {
			bad(q.field, "%q is not a quantity such as 100m or 128Mi", q.value)
		}
	}
	if !slices.Contains(failurePolicies(), v.Webhook.FailurePolicy) {
		bad("webhook.failurePolicy", "%q is not one of %s", v.Webhook.FailurePolicy, strings.Join(failurePolicies(), ", "))
	}
	if v.Webhook.TimeoutSeconds < 1 || v.Webhook.TimeoutSeconds > 30 {
		bad("webhook.timeoutSeconds", "%d is not between 1 and 30", v.Webhook.TimeoutSeconds)
	}
	return errors.Join(errs...)
}

// validTag reports whether t is a valid image tag.
func validTag(t string) bool {
	if t == "" || len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
		default:
			return false
		}
	}
	return true
}

// validRegistry reports whether r is a registry host with an optional path,
// without a tag or digest: "ghcr.io/weft-mesh", "localhost:5000/weft".
func validRegistry(r string) bool {
	if r == "" || strings.HasSuffix(r, "/") || strings.ContainsAny(r, " \t\n@") {
		return false
	}
	if i := strings.LastIndex(r, "/"); i >= 0 && strings.Contains(r[i+1:], ":") {
		return false // a tag on the last path element
	}
	return true
}
