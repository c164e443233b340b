// Package webhookca keeps what the cluster needs of the mesh's trust
// anchors in step with the control plane's CA: the caBundle of every
// webhook of the injection MutatingWebhookConfiguration (so the API server
// trusts the webhook's serving certificate), and the ConfigMap the injector
// mounts into meshed pods (inject.TrustAnchorsConfigMap, key
// inject.TrustAnchorsKey) in every namespace where injection is enabled.
//
// It is singleton work: Run watches on every replica but writes only while
// Options.Leading says so (the replica holding the leader-election Lease).
// It reads the anchors from the live authority the control plane already
// reloads (identity.Authority.Current), so it adds no watcher of its own on
// the CA files.
package webhookca
