package check

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"time"

	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/weft-mesh/weft/internal/install"
)

// Categories of the cluster checks.
const (
	CategoryAPI          = "kubernetes-api"
	CategoryPermissions  = "kubernetes-permissions"
	CategoryCRDs         = "weft-crds"
	CategoryGatewayAPI   = "gateway-api"
	CategoryControlPlane = "weft-control-plane"
	CategoryWebhook      = "weft-webhook"
	CategoryCertificates = "weft-certificates"
	CategoryDataPlane    = "weft-data-plane"
)

// Cluster is a Kubernetes cluster to check.
type Cluster struct {
	Client        kubernetes.Interface
	APIExtensions apiextclient.Interface
	// Namespace is the control plane's; empty means
	// install.DefaultNamespace.
	Namespace string
	// AnchorWarning and IssuerWarning: warn when a trust anchor, or the
	// issuer, of the weft-ca Secret expires within this; zero means 180
	// and 30 days.
	AnchorWarning, IssuerWarning time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewCluster returns the Cluster of cfg's API server.
func NewCluster(cfg *rest.Config, namespace string) (*Cluster, error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building a Kubernetes HTTP client: %w", err)
	}
	cs, err := kubernetes.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building a Kubernetes client: %w", err)
	}
	ext, err := apiextclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building a Kubernetes apiextensions client: %w", err)
	}
	return &Cluster{Client: cs, APIExtensions: ext, Namespace: namespace}, nil
}

func (c *Cluster) namespace() string {
	if c.Namespace == "" {
		return install.DefaultNamespace
	}
	return c.Namespace
}

func (c *Cluster) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// apiChecks are the first checks of both lists.
func (c *Cluster) apiChecks() []Check {
	return []Check{
		{Category: CategoryAPI, Name: "can reach the Kubernetes API server", Fatal: true, Run: c.checkAPIReachable},
		{Category: CategoryAPI, Name: "the Kubernetes version is supported", Run: c.checkVersion},
	}
}

// PreInstall are the checks that weft can be installed: the API server,
// its version, the permissions `weft install` needs, weft's CRDs absent
// or compatible, and the Gateway API CRDs (a warning).
func (c *Cluster) PreInstall() []Check {
	checks := c.apiChecks()
	for _, p := range installPermissions() {
		checks = append(checks, Check{Category: CategoryPermissions, Name: "can create " + p.what, Run: c.checkCanCreate(p)})
	}
	return append(checks,
		Check{Category: CategoryCRDs, Name: "weft's CRDs are absent or compatible", Run: c.checkCRDsCompatible},
		Check{Category: CategoryGatewayAPI, Name: "the Gateway API route CRDs are installed", Run: c.checkGatewayAPI},
	)
}

// PostInstall are the checks of an installed weft: the control plane, the
// injection webhook, the CRDs, the certificates and the meshed pods.
func (c *Cluster) PostInstall() []Check {
	return append(c.apiChecks(),
		Check{Category: CategoryControlPlane, Name: "the control plane namespace exists", Fatal: true, Run: c.checkNamespace},
		Check{Category: CategoryControlPlane, Name: "the control plane Deployment is available", Run: c.checkDeployment},
		Check{Category: CategoryControlPlane, Name: "the control plane pods are ready", Run: c.checkControlPlanePods},
		Check{Category: CategoryControlPlane, Name: "the control plane Service has ready endpoints", Run: c.checkControlPlaneService},
		Check{Category: CategoryWebhook, Name: "the injection webhook is registered", Run: c.checkWebhookRegistered},
		Check{Category: CategoryWebhook, Name: "the webhook's caBundle holds the trust anchors", Run: c.checkWebhookCABundle},
		Check{Category: CategoryWebhook, Name: "the injection webhook is reachable", Run: c.checkWebhookReachable},
		Check{Category: CategoryCRDs, Name: "weft's CRDs are installed and current", Run: c.checkCRDsCurrent},
		Check{Category: CategoryCertificates, Name: "the trust anchors and issuer are not near expiry", Run: c.checkCertificates},
		Check{Category: CategoryDataPlane, Name: "meshed pods have a ready weft-proxy", Run: c.checkProxies},
		Check{Category: CategoryGatewayAPI, Name: "the Gateway API route CRDs are installed", Run: c.checkGatewayAPI},
	)
}

// serverVersion reads the API server's /version, bounded by ctx.
func (c *Cluster) serverVersion(ctx context.Context) (version.Info, error) {
	var info version.Info
	raw, err := c.Client.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return info, fmt.Errorf("reading /version: %w", err)
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return info, fmt.Errorf("decoding /version: %w", err)
	}
	return info, nil
}

func (c *Cluster) checkAPIReachable(ctx context.Context) Outcome {
	if _, err := c.serverVersion(ctx); err != nil {
		return Fail("check the kubeconfig (--kubeconfig, --context, $KUBECONFIG) and that the cluster is up: kubectl cluster-info",
			"%v", err)
	}
	return Pass("")
}

func (c *Cluster) checkVersion(ctx context.Context) Outcome {
	info, err := c.serverVersion(ctx)
	if err != nil {
		return Fail("check the kubeconfig and that the cluster is up: kubectl version", "%v", err)
	}
	return versionOutcome(info.GitVersion)
}

// gatewayAPIVersion is the version of sigs.k8s.io/gateway-api this binary
// was built with, or "" when unknown.
func gatewayAPIVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == "sigs.k8s.io/gateway-api" {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return ""
}
