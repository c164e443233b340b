package webhookca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	arinformers "k8s.io/client-go/informers/admissionregistration/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/weft-mesh/weft/internal/control/inject"
	"github.com/weft-mesh/weft/internal/install"
)

// Defaults of Options.
const (
	DefaultInterval = 2 * time.Second
	DefaultResync   = 10 * time.Minute
)

// ManagedByLabel marks the anchors ConfigMaps this package writes; one so
// marked keeps being updated after its namespace stops enabling injection
// (its pods may still run a proxy).
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = install.ControlPlaneName
)

// Options configure Run.
type Options struct {
	// Client is the Kubernetes API client. Required.
	Client kubernetes.Interface
	// Anchors returns the current trust anchors (the live authority's).
	// Required.
	Anchors func() []*x509.Certificate
	// Leading reports whether this replica does the writes now; nil means
	// always.
	Leading func() bool
	// WebhookName is the MutatingWebhookConfiguration whose caBundle is
	// kept; empty means install.WebhookName.
	WebhookName string
	// Interval is how often the anchors and the leadership are looked at
	// again (events of the watched objects act at once); 0 means
	// DefaultInterval.
	Interval time.Duration
	// Resync of the informers; 0 means DefaultResync.
	Resync time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// AnchorsPEM is the PEM of anchors, the caBundle and the ConfigMap's data.
func AnchorsPEM(anchors []*x509.Certificate) []byte {
	var b []byte
	for _, c := range anchors {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// InjectionEnabled is the injector's rule for a namespace: weft.io/inject
// is "enabled" as a label or an annotation.
func InjectionEnabled(ns *corev1.Namespace) bool {
	return ns.Labels[inject.AnnotationInject] == inject.Enabled || ns.Annotations[inject.AnnotationInject] == inject.Enabled
}

// publisher is one Run's state; only Run's goroutine reconciles.
type publisher struct {
	o       Options
	log     *slog.Logger
	ns      toolscache.SharedIndexInformer
	cms     toolscache.SharedIndexInformer
	webhook toolscache.SharedIndexInformer
	// missing: the webhook configuration's absence was logged.
	missing bool
}

// Run keeps the caBundle and the anchors ConfigMaps current until ctx
// ends, then returns nil. Failed writes are logged and retried at the
// next interval.
func Run(ctx context.Context, o Options) error {
	if o.Client == nil || o.Anchors == nil {
		return errors.New("webhookca: a Kubernetes client and the anchors are required")
	}
	if o.WebhookName == "" {
		o.WebhookName = install.WebhookName
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.Leading == nil {
		o.Leading = func() bool { return true }
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	byName := func(name string) func(*metav1.ListOptions) {
		return func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}
	}
	p := &publisher{
		o:   o,
		log: log,
		ns:  coreinformers.NewNamespaceInformer(o.Client, o.Resync, nil),
		// Only the anchors ConfigMaps and the one webhook configuration:
		// the RBAC grants reading them by name.
		cms:     coreinformers.NewFilteredConfigMapInformer(o.Client, metav1.NamespaceAll, o.Resync, nil, byName(inject.TrustAnchorsConfigMap)),
		webhook: arinformers.NewFilteredMutatingWebhookConfigurationInformer(o.Client, o.Resync, nil, byName(o.WebhookName)),
	}
	kick := make(chan struct{}, 1)
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke(kick) },
		UpdateFunc: func(any, any) { poke(kick) },
		DeleteFunc: func(any) { poke(kick) },
	}
	var wg sync.WaitGroup
	for _, inf := range []toolscache.SharedIndexInformer{p.ns, p.cms, p.webhook} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("webhookca: %w", err)
		}
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	defer wg.Wait()
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		if o.Leading() && p.ns.HasSynced() && p.cms.HasSynced() && p.webhook.HasSynced() {
			p.reconcile(ctx, AnchorsPEM(o.Anchors()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-kick:
		}
	}
}

// sameCertificates reports whether two PEM bundles hold the same
// certificates, whatever their order or the text around them: cert-manager's
// CA injector may write the same anchors (ca.crt of weft-ca) byte for byte
// differently, and the two must not take turns rewriting the caBundle.
func sameCertificates(a, b []byte) bool {
	ders := func(p []byte) map[string]bool {
		out := map[string]bool{}
		for {
			var blk *pem.Block
			if blk, p = pem.Decode(p); blk == nil {
				return out
			}
			if blk.Type == "CERTIFICATE" {
				out[string(blk.Bytes)] = true
			}
		}
	}
	da, db := ders(a), ders(b)
	if len(da) != len(db) || len(da) == 0 {
		return bytes.Equal(a, b)
	}
	for k := range da {
		if !db[k] {
			return false
		}
	}
	return true
}

func poke(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (p *publisher) reconcile(ctx context.Context, bundle []byte) {
	if len(bundle) == 0 {
		return
	}
	if err := p.caBundle(ctx, bundle); err != nil {
		p.log.Error("updating the webhook configuration's caBundle failed; retrying", "webhook", p.o.WebhookName, "error", err)
	}
	p.configMaps(ctx, bundle)
}

// caBundle patches every webhook of the configuration whose caBundle is
// not bundle, in one strategic merge patch (webhooks merge by name).
func (p *publisher) caBundle(ctx context.Context, bundle []byte) error {
	obj, ok, err := p.webhook.GetStore().GetByKey(p.o.WebhookName)
	if err != nil {
		return fmt.Errorf("reading the cache: %w", err)
	}
	if !ok {
		if !p.missing {
			p.log.Warn("the injection webhook configuration does not exist; its caBundle is written once it does", "webhook", p.o.WebhookName)
			p.missing = true
		}
		return nil
	}
	p.missing = false
	cfg, ok := obj.(*admissionregistrationv1.MutatingWebhookConfiguration)
	if !ok {
		return fmt.Errorf("unexpected %T in the cache", obj)
	}
	type clientConfig struct {
		CABundle []byte `json:"caBundle"`
	}
	type webhook struct {
		Name         string       `json:"name"`
		ClientConfig clientConfig `json:"clientConfig"`
	}
	var stale []webhook
	for _, w := range cfg.Webhooks {
		if !sameCertificates(w.ClientConfig.CABundle, bundle) {
			stale = append(stale, webhook{Name: w.Name, ClientConfig: clientConfig{CABundle: bundle}})
		}
	}
	if len(stale) == 0 {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"webhooks": stale})
	if err != nil {
		return fmt.Errorf("encoding the patch: %w", err)
	}
	if _, err := p.o.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, cfg.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patching %s: %w", cfg.Name, err)
	}
	p.log.Info("webhook caBundle updated to the trust anchors", "webhook", cfg.Name, "webhooks", len(stale))
	return nil
}

// configMaps creates the anchors ConfigMap in every namespace enabling
// injection, and updates every one that is stale there or that it made.
func (p *publisher) configMaps(ctx context.Context, bundle []byte) {
	want := string(bundle)
	for _, obj := range p.ns.GetStore().List() {
		ns, ok := obj.(*corev1.Namespace)
		if !ok || ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil {
			continue
		}
		cur := p.cachedConfigMap(ns.Name)
		var err error
		switch {
		case cur == nil && InjectionEnabled(ns):
			_, err = p.o.Client.CoreV1().ConfigMaps(ns.Name).Create(ctx, anchorsConfigMap(ns.Name, want), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				err = nil // the cache is behind: the update follows its event
			}
		case cur == nil, cur.Data[inject.TrustAnchorsKey] == want:
			continue
		case InjectionEnabled(ns) || cur.Labels[ManagedByLabel] == ManagedByValue:
			next := cur.DeepCopy()
			if next.Data == nil {
				next.Data = map[string]string{}
			}
			next.Data[inject.TrustAnchorsKey] = want
			_, err = p.o.Client.CoreV1().ConfigMaps(ns.Name).Update(ctx, next, metav1.UpdateOptions{})
		default:
			continue
		}
		if err != nil {
			p.log.Error("publishing the trust anchors ConfigMap failed; retrying", "namespace", ns.Name, "configmap", inject.TrustAnchorsConfigMap, "error", err)
			continue
		}
		p.log.Info("trust anchors ConfigMap published", "namespace", ns.Name, "configmap", inject.TrustAnchorsConfigMap)
	}
}

func (p *publisher) cachedConfigMap(ns string) *corev1.ConfigMap {
	obj, ok, err := p.cms.GetStore().GetByKey(ns + "/" + inject.TrustAnchorsConfigMap)
	if err != nil || !ok {
		return nil
	}
	cm, _ := obj.(*corev1.ConfigMap)
	return cm
}

func anchorsConfigMap(ns, bundle string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: inject.TrustAnchorsConfigMap, Namespace: ns,
			Labels: map[string]string{ManagedByLabel: ManagedByValue},
		},
		Data: map[string]string{inject.TrustAnchorsKey: bundle},
	}
}
