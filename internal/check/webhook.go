package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/weft-mesh/weft/internal/install"
)

// caKey is the key of the trust anchors in the weft-ca Secret and the
// anchors ConfigMap (cert-manager's layout).
const caKey = "ca.crt"

func (c *Cluster) webhookConfig(ctx context.Context) (*admissionregistrationv1.MutatingWebhookConfiguration, Outcome, bool) {
	w, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, install.WebhookName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, Fail("install weft: weft install --apply", "MutatingWebhookConfiguration %s does not exist: pods get no proxy", install.WebhookName), false
	}
	if err != nil {
		return nil, Fail("check that the kubeconfig's user may read MutatingWebhookConfigurations",
			"reading MutatingWebhookConfiguration %s: %v", install.WebhookName, err), false
	}
	if len(w.Webhooks) == 0 {
		return nil, Fail("re-install weft: weft install --apply", "MutatingWebhookConfiguration %s has no webhooks", install.WebhookName), false
	}
	return w, Outcome{}, true
}

func (c *Cluster) checkWebhookRegistered(ctx context.Context) Outcome {
	_, o, ok := c.webhookConfig(ctx)
	if !ok {
		return o
	}
	return Pass("")
}

// trustAnchors returns the PEM trust anchors: the weft-ca Secret's ca.crt,
// else (a user who may not read Secrets) the anchors ConfigMap the control
// plane publishes, and where they were read.
func (c *Cluster) trustAnchors(ctx context.Context) ([]byte, string, error) {
	ns := c.namespace()
	s, err := c.Client.CoreV1().Secrets(ns).Get(ctx, install.CASecretName, metav1.GetOptions{})
	if err == nil && len(s.Data[caKey]) > 0 {
		return s.Data[caKey], fmt.Sprintf("secret %s/%s", ns, install.CASecretName), nil
	}
	secretErr := err
	if err == nil {
		secretErr = fmt.Errorf("secret %s/%s has no %s", ns, install.CASecretName, caKey)
	}
	cms, err := c.Client.CoreV1().ConfigMaps(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", install.AnchorsConfigMapName).String(),
	})
	if err != nil {
		return nil, "", errors.Join(fmt.Errorf("reading the trust anchors: %w", secretErr), fmt.Errorf("listing the %s ConfigMaps: %w", install.AnchorsConfigMapName, err))
	}
	for _, cm := range cms.Items {
		if d := cm.Data[caKey]; d != "" {
			return []byte(d), fmt.Sprintf("configmap %s/%s", cm.Namespace, cm.Name), nil
		}
	}
	return nil, "", fmt.Errorf("reading the trust anchors: %w; and no %s ConfigMap holds them", secretErr, install.AnchorsConfigMapName)
}

func (c *Cluster) checkWebhookCABundle(ctx context.Context) Outcome {
	w, o, ok := c.webhookConfig(ctx)
	if !ok {
		return o
	}
	ns := c.namespace()
	anchors, from, err := c.trustAnchors(ctx)
	if err != nil {
		return Fail(fmt.Sprintf("install weft (weft install --apply creates secret %s/%s), or with cert-manager check its Certificate: kubectl -n %s describe certificate %s",
			ns, install.CASecretName, ns, install.CASecretName), "%v", err)
	}
	writer := fmt.Sprintf("the control plane writes it once it runs and leads: check its pods and Lease (kubectl -n %s get pods,lease); %s",
		ns, c.describeHint())
	if _, ok := w.Annotations["cert-manager.io/inject-ca-from"]; ok {
		writer = "cert-manager's CA injector (and the control plane) write it: check cert-manager's cainjector logs; " + writer
	}
	var empty, wrong []string
	for _, h := range w.Webhooks {
		if len(h.ClientConfig.CABundle) == 0 {
			empty = append(empty, h.Name)
			continue
		}
		same, err := sameCerts(h.ClientConfig.CABundle, anchors)
		if err != nil {
			wrong = append(wrong, fmt.Sprintf("%s (%v)", h.Name, err))
		} else if !same {
			wrong = append(wrong, h.Name)
		}
	}
	switch {
	case len(empty) > 0:
		return Fail(writer, "the caBundle of webhook %s is empty: the API server cannot call it over TLS", strings.Join(empty, ", "))
	case len(wrong) > 0:
		return Fail("the control plane corrects it within seconds while it runs; if this persists, something else writes caBundle "+
			"(a GitOps tool re-applying an old value?) or "+writer,
			"the caBundle of webhook %s is not the trust anchors of %s: the API server will refuse the webhook's certificate", strings.Join(wrong, ", "), from)
	}
	return Pass("")
}

// checkWebhookReachable checks that the Service each webhook calls has
// ready endpoints: without one the API server cannot call it.
func (c *Cluster) checkWebhookReachable(ctx context.Context) Outcome {
	w, o, ok := c.webhookConfig(ctx)
	if !ok {
		return o
	}
	failing := false
	var down []string
	seen := map[string]bool{}
	for _, h := range w.Webhooks {
		if h.FailurePolicy == nil || *h.FailurePolicy == admissionregistrationv1.Fail {
			failing = true
		}
		ref := h.ClientConfig.Service
		if ref == nil {
			continue // a URL: nothing in the cluster to look at
		}
		port := int32(443)
		if ref.Port != nil {
			port = *ref.Port
		}
		key := fmt.Sprintf("%s/%s:%d", ref.Namespace, ref.Name, port)
		if seen[key] {
			continue
		}
		seen[key] = true
		n, err := c.readyEndpoints(ctx, ref.Namespace, ref.Name, port)
		if err != nil {
			down = append(down, err.Error())
		} else if n == 0 {
			down = append(down, fmt.Sprintf("service %s has no ready endpoints", key))
		}
	}
	if len(down) == 0 {
		return Pass("")
	}
	effect := "pods are created without a proxy meanwhile (failurePolicy Ignore)"
	if failing {
		effect = "pods to inject cannot be created meanwhile (failurePolicy Fail)"
	}
	return Fail(fmt.Sprintf("check the control plane pods, which serve the webhook: %s", c.describeHint()),
		"the API server cannot call the injection webhook: %s; %s", strings.Join(down, "; "), effect)
}

// ClusterExpiryPolicy is the expiry policy of the weft-ca Secret of a
// cluster's control plane namespace.
func ClusterExpiryPolicy(anchorWarning, issuerWarning time.Duration, namespace string) ExpiryPolicy {
	return ExpiryPolicy{
		AnchorWarning: anchorWarning,
		IssuerWarning: issuerWarning,
		IssuerFix: fmt.Sprintf("renew the issuer (tls.crt, tls.key) of secret %s/%s: with cert-manager it renews by itself (kubectl -n %s describe certificate %s); "+
			"otherwise `weft ca rotate-issuer --data-dir DIR` on the CA you installed with --ca-dir, and write the new files into the Secret", namespace, install.CASecretName, namespace, install.CASecretName),
		AnchorFix: func(fp string) string {
			return fmt.Sprintf("roll in a new trust anchor beside %s in ca.crt of secret %s/%s before it expires (see docs/identity.md)", fp, namespace, install.CASecretName)
		},
	}
}

func (c *Cluster) checkCertificates(ctx context.Context) Outcome {
	ns := c.namespace()
	s, err := c.Client.CoreV1().Secrets(ns).Get(ctx, install.CASecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Fail(fmt.Sprintf("install weft (weft install --apply creates it), or with cert-manager check its Certificate: kubectl -n %s describe certificate %s", ns, install.CASecretName),
			"secret %s/%s does not exist: the control plane has no CA", ns, install.CASecretName)
	}
	if err != nil {
		return Fail("check that the kubeconfig's user may read Secrets in "+ns, "reading secret %s/%s: %v", ns, install.CASecretName, err)
	}
	exps, err := ExpiriesFromPEM(s.Data[caKey], s.Data[corev1.TLSCertKey])
	if err != nil {
		return Fail("the Secret must hold tls.crt (the issuer), tls.key and ca.crt (the trust anchors), PEM", "secret %s/%s: %v", ns, install.CASecretName, err)
	}
	aw, iw := c.AnchorWarning, c.IssuerWarning
	if aw == 0 {
		aw = 180 * 24 * time.Hour
	}
	if iw == 0 {
		iw = 30 * 24 * time.Hour
	}
	findings := EvaluateExpiries(exps, c.now(), ClusterExpiryPolicy(aw, iw, ns))
	if len(findings) == 0 {
		return Pass("")
	}
	worst := Warning
	var texts, hints []string
	for _, f := range findings {
		if f.Status == Error {
			worst = Error
		}
		texts = append(texts, f.What)
		hints = append(hints, f.Fix)
	}
	return Outcome{Status: worst, Message: strings.Join(texts, "\n"), Hint: strings.Join(hints, "\n")}
}
