package install

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// cert-manager object names.
const (
	selfSignedIssuerName = "weft-selfsigned"
	anchorName           = "weft-trust-anchor"
)

// certManagerObjects make cert-manager (cert-manager.io/v1, installed by
// the user; weft has no Go dependency on it) keep weft's CA:
//
//   - a self-signed Issuer signs the trust anchor, a 10-year CA Certificate
//     (Secret weft-trust-anchor) that is not rotated: a new anchor would make
//     every proxy's certificate untrusted at once;
//   - a CA Issuer backed by that anchor issues weft's issuer, a 1-year CA
//     Certificate renewed 30 days before it ends, into the Secret weft-ca in
//     the layout the control plane reads (tls.crt, tls.key, ca.crt).
//
// For an anchor kept off the cluster, replace the first two objects with an
// Issuer of your own (Vault, an offline CA); weft only reads weft-ca.
func certManagerObjects(o Options) []*unstructured.Unstructured {
	td := "spiffe://" + o.Values.TrustDomain
	issuerRef := func(name string) map[string]any {
		return map[string]any{"name": name, "kind": "Issuer", "group": "cert-manager.io"}
	}
	obj := func(kind, name string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cert-manager.io/v1",
			"kind":       kind,
			"spec":       spec,
		}}
		u.SetName(name)
		u.SetNamespace(o.Namespace)
		u.SetLabels(labels())
		return u
	}
	ecdsa := func(rotation string) map[string]any {
		return map[string]any{"algorithm": "ECDSA", "size": int64(256), "rotationPolicy": rotation}
	}
	return []*unstructured.Unstructured{
		obj("Issuer", selfSignedIssuerName, map[string]any{"selfSigned": map[string]any{}}),
		obj("Certificate", anchorName, map[string]any{
			"isCA":        true,
			"commonName":  "weft trust anchor",
			"uris":        []any{td},
			"secretName":  anchorName,
			"duration":    "87600h0m0s",
			"renewBefore": "720h0m0s",
			"privateKey":  ecdsa("Never"),
			"usages":      []any{"cert sign", "crl sign"},
			"issuerRef":   issuerRef(selfSignedIssuerName),
		}),
		obj("Issuer", anchorName, map[string]any{"ca": map[string]any{"secretName": anchorName}}),
		obj("Certificate", CASecretName, map[string]any{
			"isCA":        true,
			"commonName":  "weft issuer",
			"uris":        []any{td},
			"secretName":  CASecretName,
			"duration":    "8760h0m0s",
			"renewBefore": "720h0m0s",
			"privateKey":  ecdsa("Always"),
			"usages":      []any{"cert sign", "crl sign", "digital signature"},
			"issuerRef":   issuerRef(anchorName),
		}),
	}
}
