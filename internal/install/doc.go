// Package install renders what installs weft into a Kubernetes cluster, and
// applies or deletes it: the namespace, weft's CRDs, the control plane's
// ServiceAccount and least-privilege RBAC, the trust anchor (a weft-ca
// Secret, or cert-manager objects that keep it), the control plane's
// Deployment, Service and PodDisruptionBudget, and the sidecar-injection
// webhook's registration.
//
// Render is the one source of truth. `weft install` prints or applies its
// output; the Helm chart in deploy/helm/weft is generated from it
// (GenerateChart, `make gen`), its values being Values, and a test renders
// the chart's templates and compares them with Render, object by object. The
// images are named in one place (image.go), set at link time.
//
// Apply uses server-side apply with one field manager ("weft"), so applying
// a newer version's manifests over an older one is the upgrade: fields the
// new version no longer sets are removed, fields other managers own (the
// webhook's caBundle the control plane writes) are kept, and an existing
// weft-ca Secret is never replaced. Delete removes in the safe order: the
// webhook first (so that pods can still be created while the rest goes), the
// CRDs last and only when asked, after counting the custom resources that
// would go with them.
package install
