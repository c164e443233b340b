package webhookca_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/inject"
	"github.com/weft-mesh/weft/internal/control/webhookca"
	"github.com/weft-mesh/weft/internal/install"
)

// anchorsOf generates a CA and returns its anchors.
func anchorsOf(t *testing.T) []*x509.Certificate {
	t.Helper()
	a, err := ca.LoadOrCreate(filepath.Join(t.TempDir(), "ca"), ca.Options{TrustDomain: "weft.local"})
	if err != nil {
		t.Fatal(err)
	}
	return a.Anchors()
}

// run runs the publisher until the test ends; anchors and leading are what
// it reads.
func run(t *testing.T, cs kubernetes.Interface, webhook string, anchors *atomic.Pointer[[]*x509.Certificate], leading *atomic.Bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- webhookca.Run(ctx, webhookca.Options{
			Client: cs, WebhookName: webhook, Interval: 100 * time.Millisecond,
			Anchors: func() []*x509.Certificate { return *anchors.Load() },
			Leading: leading.Load,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		last := cond()
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s: %s", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000_000)
}

// TestCABundle: started before the webhook configuration exists, the
// publisher fills the caBundle of each of its webhooks once it is created,
// and follows an anchor change.
func TestCABundle(t *testing.T) {
	env := kube.Get(t)
	cs := env.Clientset
	name := uniqueName("weft-inject-test")
	var anchors atomic.Pointer[[]*x509.Certificate]
	first, second := anchorsOf(t), anchorsOf(t)
	anchors.Store(&first)
	var leading atomic.Bool
	leading.Store(true)
	run(t, cs, name, &anchors, &leading)
	time.Sleep(300 * time.Millisecond) // a few intervals without the configuration

	webhook := func(n string) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    n,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/inject")},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
			// Selects nothing: the webhook is never called.
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"weft-test-never": "x"}},
		}
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{webhook("namespace.inject.weft.io"), webhook("pod.inject.weft.io")},
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(t.Context(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	for _, tc := range []struct {
		name    string
		anchors []*x509.Certificate
	}{
		{name: "filled", anchors: first},
		{name: "after an anchor change", anchors: second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			anchors.Store(&tc.anchors)
			want := string(webhookca.AnchorsPEM(tc.anchors))
			waitFor(t, "every webhook's caBundle is the anchors", func() string {
				got, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), name, metav1.GetOptions{})
				if err != nil {
					return err.Error()
				}
				for _, w := range got.Webhooks {
					if string(w.ClientConfig.CABundle) != want {
						return fmt.Sprintf("webhook %s: caBundle of %d bytes, not the anchors", w.Name, len(w.ClientConfig.CABundle))
					}
				}
				return ""
			})
		})
	}
}

// TestAnchorsConfigMap: the anchors ConfigMap appears in namespaces that
// enable injection (label or annotation) once this replica leads, not in
// others; it follows an anchor change and a namespace enabled later.
func TestAnchorsConfigMap(t *testing.T) {
	env := kube.Get(t)
	cs := env.Clientset
	base := uniqueName("anchors")
	mkNS := func(suffix string, labels, annotations map[string]string) string {
		n := base + "-" + suffix
		if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: labels, Annotations: annotations}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), n, metav1.DeleteOptions{}) })
		return n
	}
	enabled := map[string]string{inject.AnnotationInject: inject.Enabled}
	byLabel := mkNS("label", enabled, nil)
	byAnnotation := mkNS("annotation", nil, enabled)
	plain := mkNS("plain", nil, nil)
	disabled := mkNS("disabled", map[string]string{inject.AnnotationInject: inject.Disabled}, nil)

	var anchors atomic.Pointer[[]*x509.Certificate]
	first, second := anchorsOf(t), anchorsOf(t)
	anchors.Store(&first)
	var leading atomic.Bool
	run(t, cs, uniqueName("absent"), &anchors, &leading)

	// state is "ns=<first|second|other|none>" for each namespace.
	state := func() string {
		var out []string
		for _, ns := range []string{byLabel, byAnnotation, plain, disabled} {
			cm, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), inject.TrustAnchorsConfigMap, metav1.GetOptions{})
			v := "none"
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				v = err.Error()
			case cm.Data[inject.TrustAnchorsKey] == string(webhookca.AnchorsPEM(first)):
				v = "first"
			case cm.Data[inject.TrustAnchorsKey] == string(webhookca.AnchorsPEM(second)):
				v = "second"
			default:
				v = "other"
			}
			out = append(out, strings.TrimPrefix(ns, base+"-")+"="+v)
		}
		return strings.Join(out, " ")
	}
	expect := func(want string) func() string {
		return func() string {
			if got := state(); got != want {
				return fmt.Sprintf("got %q, want %q", got, want)
			}
			return ""
		}
	}

	time.Sleep(500 * time.Millisecond)
	if got, want := state(), "label=none annotation=none plain=none disabled=none"; got != want {
		t.Fatalf("a replica that does not lead wrote: %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name, want string
		change     func()
	}{
		{name: "leading", change: func() { leading.Store(true) }, want: "label=first annotation=first plain=none disabled=none"},
		{name: "anchor change", change: func() { anchors.Store(&second) }, want: "label=second annotation=second plain=none disabled=none"},
		{name: "namespace enabled later", change: func() {
			ns, err := cs.CoreV1().Namespaces().Get(t.Context(), plain, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ns.Labels = enabled
			if _, err := cs.CoreV1().Namespaces().Update(t.Context(), ns, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}, want: "label=second annotation=second plain=second disabled=none"},
		{name: "ConfigMap deleted", change: func() {
			if err := cs.CoreV1().ConfigMaps(byLabel).Delete(t.Context(), inject.TrustAnchorsConfigMap, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, want: "label=second annotation=second plain=second disabled=none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			waitFor(t, "the ConfigMaps are "+tc.want, expect(tc.want))
		})
	}
	cm, err := cs.CoreV1().ConfigMaps(byLabel).Get(t.Context(), inject.TrustAnchorsConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Labels[webhookca.ManagedByLabel] != webhookca.ManagedByValue {
		t.Errorf("labels %v, want %s=%s", cm.Labels, webhookca.ManagedByLabel, webhookca.ManagedByValue)
	}
}

// TestNamesAgree: the ConfigMap the RBAC lets the control plane write is
// the one the injector mounts and this package publishes.
func TestNamesAgree(t *testing.T) {
	if install.AnchorsConfigMapName != inject.TrustAnchorsConfigMap {
		t.Errorf("install.AnchorsConfigMapName %q, inject.TrustAnchorsConfigMap %q: the RBAC would not cover the published ConfigMap", install.AnchorsConfigMapName, inject.TrustAnchorsConfigMap)
	}
}
