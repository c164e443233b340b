package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// resources maps the kinds Render produces to their API resource, so that
// applying needs no discovery (and works before cert-manager's or weft's
// CRDs are served, with a clear error for the former).
func resources() map[string]string {
	return map[string]string{
		"Namespace":                    "namespaces",
		"CustomResourceDefinition":     "customresourcedefinitions",
		"ServiceAccount":               "serviceaccounts",
		"ClusterRole":                  "clusterroles",
		"ClusterRoleBinding":           "clusterrolebindings",
		"Role":                         "roles",
		"RoleBinding":                  "rolebindings",
		"Secret":                       "secrets",
		"Service":                      "services",
		"Deployment":                   "deployments",
		"PodDisruptionBudget":          "poddisruptionbudgets",
		"MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
		"Issuer":                       "issuers",
		"Certificate":                  "certificates",
	}
}

// Cluster applies and deletes manifests in one cluster.
type Cluster struct {
	dyn dynamic.Interface
	out io.Writer // one line per object: what was done to it
}

// NewCluster returns a Cluster of the API server of cfg, reporting to out.
func NewCluster(cfg *rest.Config, out io.Writer) (*Cluster, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building a Kubernetes client: %w", err)
	}
	return &Cluster{dyn: dyn, out: out}, nil
}

// resourceOf returns the client of o's resource, in o's namespace if any.
func (c *Cluster) resourceOf(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gv, err := schema.ParseGroupVersion(o.GetAPIVersion())
	if err != nil {
		return nil, fmt.Errorf("%s %s: apiVersion %q: %w", o.GetKind(), o.GetName(), o.GetAPIVersion(), err)
	}
	res, ok := resources()[o.GetKind()]
	if !ok {
		return nil, fmt.Errorf("%s %s: weft install does not know the kind %s", o.GetKind(), o.GetName(), o.GetKind())
	}
	r := c.dyn.Resource(gv.WithResource(res))
	if ns := o.GetNamespace(); ns != "" {
		return r.Namespace(ns), nil
	}
	return r, nil
}

// ref is how an object is named in reports: "deployment/weft-control".
func ref(o *unstructured.Unstructured) string {
	return strings.ToLower(o.GetKind()) + "/" + o.GetName()
}

func dryRunOpt(dryRun bool) []string {
	if dryRun {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// ApplyOptions configure Cluster.Apply.
type ApplyOptions struct {
	// DryRun makes the API server check every object (admission,
	// validation, conflicts) and persist nothing.
	DryRun bool
	// CRDTimeout bounds the wait for applied CRDs to be established; zero
	// means a minute.
	CRDTimeout time.Duration
}

// Apply applies m with server-side apply (field manager FieldManager,
// taking over fields another manager set, such as a kubectl client-side
// apply of an earlier version), in m's order. An existing weft-ca Secret is
// kept, never replaced: a new trust anchor would make every certificate
// issued so far untrusted. Applied CRDs are waited for until established.
//
// A dry run of namespaced objects needs their namespace: when it does not
// exist yet they are reported as not checked.
func (c *Cluster) Apply(ctx context.Context, m Manifest, opts ApplyOptions) error {
	suffix := ""
	if opts.DryRun {
		suffix = " (server dry run)"
	}
	missingNS := map[string]bool{}
	var crds []*unstructured.Unstructured
	for _, o := range m.Objects {
		r, err := c.resourceOf(o)
		if err != nil {
			return err
		}
		if ns := o.GetNamespace(); opts.DryRun && ns != "" {
			if _, seen := missingNS[ns]; !seen {
				_, err := c.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, ns, metav1.GetOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("checking namespace %s: %w", ns, err)
				}
				missingNS[ns] = apierrors.IsNotFound(err)
			}
			if missingNS[ns] {
				fmt.Fprintf(c.out, "%s not checked: namespace %s does not exist yet%s\n", ref(o), ns, suffix)
				continue
			}
		}
		if o.GetKind() == "Secret" && o.GetName() == CASecretName {
			_, err := r.Get(ctx, o.GetName(), metav1.GetOptions{})
			if err == nil {
				fmt.Fprintf(c.out, "%s kept: it holds the trust anchor every proxy trusts (delete it first to start a new CA)%s\n", ref(o), suffix)
				continue
			}
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("checking for an existing %s/%s: %w", o.GetNamespace(), o.GetName(), err)
			}
		}
		_, err = r.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: FieldManager, Force: true, DryRun: dryRunOpt(opts.DryRun)})
		if err != nil {
			return applyError(o, err)
		}
		fmt.Fprintf(c.out, "%s applied%s\n", ref(o), suffix)
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		}
	}
	if opts.DryRun || len(crds) == 0 {
		return nil
	}
	return c.waitEstablished(ctx, crds, opts.CRDTimeout)
}

// applyError explains a failed apply.
func applyError(o *unstructured.Unstructured, err error) error {
	gv, _ := schema.ParseGroupVersion(o.GetAPIVersion())
	if apierrors.IsNotFound(err) {
		// Apply creates what does not exist: a NotFound is the resource
		// type (or the namespace) the API server does not know.
		hint := ""
		if gv.Group == "cert-manager.io" {
			hint = "; install cert-manager first (https://cert-manager.io/docs/installation/), or install without --cert-manager"
		}
		return fmt.Errorf("applying %s: the API server does not serve %s %s here%s: %w", ref(o), o.GetAPIVersion(), o.GetKind(), hint, err)
	}
	return fmt.Errorf("applying %s: %w", ref(o), err)
}

// waitEstablished waits until every CRD of crds is established.
func (c *Cluster) waitEstablished(ctx context.Context, crds []*unstructured.Unstructured, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = time.Minute
	}
	r := c.dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	for _, crd := range crds {
		var last string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			got, err := r.Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				cm, _ := c.(map[string]any)
				if cm["type"] == "Established" {
					last = fmt.Sprintf("Established=%v: %v", cm["status"], cm["message"])
					if cm["status"] == "True" {
						return true, nil
					}
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("waiting for CRD %s to be established (last: %s): %w", crd.GetName(), last, err)
		}
	}
	return nil
}

// DeleteOptions configure Cluster.Delete.
type DeleteOptions struct {
	// DryRun makes the API server check the deletions and do none.
	DryRun bool
	// DeleteCustomResources allows deleting CRDs that still have custom
	// resources, which the API server then deletes with them.
	DeleteCustomResources bool
}

// ErrCustomResourcesExist is returned by Delete when CRDs to delete still
// have custom resources and DeleteOptions.DeleteCustomResources is not set.
var ErrCustomResourcesExist = errors.New("custom resources would be deleted with their CRDs")

// Delete deletes the objects of m in m's order (see UninstallManifest);
// those that do not exist, or whose kind the cluster does not serve, are
// reported and skipped. Before deleting anything, when m holds CRDs, it
// counts their custom resources: if there are any, nothing is deleted and
// the error, wrapping ErrCustomResourcesExist, says how many of which kind,
// unless DeleteCustomResources is set.
func (c *Cluster) Delete(ctx context.Context, m Manifest, opts DeleteOptions) error {
	suffix := ""
	if opts.DryRun {
		suffix = " (server dry run)"
	}
	var found []string
	for _, o := range m.Objects {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		n, kind, err := c.countCustomResources(ctx, o.GetName())
		if err != nil {
			return err
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("%d %s", n, kind))
		}
	}
	if len(found) > 0 {
		if !opts.DeleteCustomResources {
			return fmt.Errorf("%w: the cluster holds %s; deleting the CRDs deletes them all. Delete or back them up first, or pass --delete-custom-resources",
				ErrCustomResourcesExist, strings.Join(found, ", "))
		}
		fmt.Fprintf(c.out, "deleting the CRDs deletes %s%s\n", strings.Join(found, ", "), suffix)
	}
	bg := metav1.DeletePropagationBackground
	for _, o := range m.Objects {
		r, err := c.resourceOf(o)
		if err != nil {
			return err
		}
		err = r.Delete(ctx, o.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg, DryRun: dryRunOpt(opts.DryRun)})
		switch {
		case apierrors.IsNotFound(err):
			fmt.Fprintf(c.out, "%s not found%s\n", ref(o), suffix)
		case err != nil:
			return fmt.Errorf("deleting %s: %w", ref(o), err)
		default:
			fmt.Fprintf(c.out, "%s deleted%s\n", ref(o), suffix)
		}
	}
	return nil
}

// countCustomResources counts the custom resources of the CRD name in all
// namespaces, and returns its kind. A CRD that does not exist has none.
func (c *Cluster) countCustomResources(ctx context.Context, name string) (int, string, error) {
	crd, err := c.dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).
		Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("reading CRD %s: %w", name, err)
	}
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	version := ""
	for _, v := range versions {
		vm, _ := v.(map[string]any)
		if served, _ := vm["served"].(bool); served {
			version, _ = vm["name"].(string)
			if storage, _ := vm["storage"].(bool); storage {
				break
			}
		}
	}
	if version == "" {
		return 0, kind, nil // nothing served, nothing to list
	}
	r := c.dyn.Resource(schema.GroupVersionResource{Group: group, Version: version, Resource: plural})
	n, cont := 0, ""
	for {
		list, err := r.List(ctx, metav1.ListOptions{Limit: 500, Continue: cont})
		if err != nil {
			return 0, kind, fmt.Errorf("counting the %s of CRD %s: %w", plural, name, err)
		}
		n += len(list.Items)
		if cont = list.GetContinue(); cont == "" {
			return n, kind, nil
		}
	}
}

// uninstallRank orders deletions: the webhook configuration first (so that
// pods can be created while the rest goes), then what runs, the CA, the
// permissions, the namespace, and the CRDs last.
func uninstallRank(kind string) int {
	order := []string{
		"MutatingWebhookConfiguration", "Deployment", "PodDisruptionBudget", "Service",
		"Certificate", "Issuer", "Secret",
		"RoleBinding", "Role", "ClusterRoleBinding", "ClusterRole", "ServiceAccount",
		"Namespace", "CustomResourceDefinition",
	}
	if i := slices.Index(order, kind); i >= 0 {
		return i
	}
	return len(order)
}

// UninstallManifest is what Delete removes for an install of o, in the safe
// order of uninstallRank. Objects carry their kind, name and namespace
// only. The CRDs are included only with o.CRDs; the cert-manager objects
// (and the Secrets cert-manager wrote) only with cert-manager.
func UninstallManifest(o Options) (Manifest, error) {
	o.CASecret = CASecretInclude
	o.CA = &CAMaterial{}
	o, err := o.withDefaults()
	if err != nil {
		return Manifest{}, fmt.Errorf("rendering the uninstall manifests: %w", err)
	}
	plain := o
	plain.Values.CertManager.Enabled = false // with the weft-ca Secret
	m, err := render(plain)
	if err != nil {
		return Manifest{}, err
	}
	objs := m.Objects
	if o.Values.CertManager.Enabled {
		anchor := caSecret(o)
		anchor.Name = anchorName
		am, err := toManifest([]runtime.Object{anchor}, nil)
		if err != nil {
			return Manifest{}, err
		}
		objs = append(append(objs, certManagerObjects(o)...), am.Objects...)
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, obj := range objs {
		bare := &unstructured.Unstructured{Object: map[string]any{"apiVersion": obj.GetAPIVersion(), "kind": obj.GetKind()}}
		bare.SetName(obj.GetName())
		bare.SetNamespace(obj.GetNamespace())
		out = append(out, bare)
	}
	slices.SortStableFunc(out, func(a, b *unstructured.Unstructured) int {
		if d := uninstallRank(a.GetKind()) - uninstallRank(b.GetKind()); d != 0 {
			return d
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
	return Manifest{Objects: out}, nil
}
