package install

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

// AnchorsConfigMapName is the ConfigMap of the trust anchors (key ca.crt)
// the control plane publishes for injected proxies; it is
// inject.TrustAnchorsConfigMap.
const AnchorsConfigMapName = "weft-ca-anchors"

// Verb sets.
func read() []string          { return []string{"get", "list", "watch"} }
func writeStatus() []string   { return []string{"update", "patch"} }
func recordEvents() []string  { return []string{"create", "patch"} }
func gatewayAPIGroup() string { return "gateway.networking.k8s.io" }

// PolicyResources are weft's policy.weft.dev resources the control plane
// reads and writes the status of.
func PolicyResources() []string {
	return []string{"authorizationpolicies", "circuitbreakers", "faultinjections", "loadbalancers", "mutualtlspolicies", "ratelimits", "retrybudgets"}
}

// clusterRules are the control plane's cluster-wide permissions, each
// with the reason it needs them. Nothing here writes a workload, reads a
// Secret or another's ConfigMap, or reaches beyond the status of what it
// reads (and the anchors ConfigMap it publishes). ServiceAccounts are
// not read: a pod's identity comes from its spec.serviceAccountName and from
// the TokenReview of its token. Nodes are not read: EndpointSlices carry
// each endpoint's zone.
func clusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// The mesh model: Services (ports, appProtocol, ClusterIPs), the
		// namespaces' annotations (default inbound policy, injection), and
		// pods (their ServiceAccount is their identity, their annotations
		// their opaque ports and other settings).
		{APIGroups: []string{""}, Resources: []string{"services", "namespaces", "pods"}, Verbs: read()},
		// Endpoints with their readiness, serving, terminating and zone.
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read()},
		// Routes attached to Services (GAMMA), and the ReferenceGrants that
		// allow a route's backendRef into another namespace ...
		{APIGroups: []string{gatewayAPIGroup()}, Resources: []string{"httproutes", "grpcroutes", "referencegrants"}, Verbs: read()},
		// ... and their Accepted and ResolvedRefs conditions, written back
		// as Gateway API implementations do. Status only: never the spec.
		{APIGroups: []string{gatewayAPIGroup()}, Resources: []string{"httproutes/status", "grpcroutes/status"}, Verbs: writeStatus()},
		// weft's policies ...
		{APIGroups: []string{"policy.weft.dev"}, Resources: PolicyResources(), Verbs: read()},
		// ... and their status conditions.
		{APIGroups: []string{"policy.weft.dev"}, Resources: statusOf(PolicyResources()), Verbs: writeStatus()},
		// Workloads outside Kubernetes (VMs) that join the mesh.
		{APIGroups: []string{"weft.dev"}, Resources: []string{"workloads"}, Verbs: read()},
		// The Identity API checks a pod's projected ServiceAccount token
		// (audience weft) with the TokenReview API before issuing its
		// certificate.
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		// The control plane serves the injection webhook with a certificate
		// of its own CA and keeps that CA's anchors in its webhook
		// configuration's caBundle: its own configuration only (watched
		// through a metadata.name field selector, which RBAC authorizes by
		// name, to repair a caBundle an upgrade reset).
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"},
			ResourceNames: []string{WebhookName}, Verbs: []string{"get", "list", "watch", "patch"}},
		// The trust anchors injected proxies mount: the ConfigMap
		// AnchorsConfigMapName, published in every namespace that enables
		// injection and kept current across anchor rotations. A create
		// cannot be limited to a name (the name is not known to RBAC before
		// the object exists), so creating ConfigMaps is granted in every
		// namespace; reading, watching (a metadata.name field selector) and
		// updating are granted for that name only: no other ConfigMap can
		// be read or changed.
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{AnchorsConfigMapName},
			Verbs: []string{"get", "list", "watch", "update", "patch"}},
	}
}

// namespaceRules are the control plane's permissions in its own namespace.
func namespaceRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// Leader election for the singleton work (status writes, the
		// webhook's caBundle): creating the Lease the first time (a create
		// cannot be limited to a name) ...
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		// ... then reading and renewing that one Lease.
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{LeaseName}, Verbs: []string{"get", "update"}},
		// The issuer and anchors, watched to notice a renewal (cert-manager)
		// or an anchor change without waiting for the kubelet to refresh the
		// mounted volume. That one Secret, never a list.
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{CASecretName}, Verbs: []string{"get", "watch"}},
		// Events of leader changes and CA reloads, in its own namespace
		// (the core and the events.k8s.io API, whichever the recorder uses;
		// patch: a repeated event is counted on the existing one).
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: recordEvents()},
	}
}

func statusOf(resources []string) []string {
	out := make([]string, len(resources))
	for i, r := range resources {
		out[i] = r + "/status"
	}
	return out
}

func clusterRole(o Options) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: meta(ControlPlaneName, ""), Rules: clusterRules()}
}

func subjects(o Options) []rbacv1.Subject {
	return []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: ControlPlaneName, Namespace: o.Namespace}}
}

func clusterRoleBinding(o Options) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
		ObjectMeta: meta(ControlPlaneName, ""),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ControlPlaneName},
		Subjects:   subjects(o),
	}
}

func role(o Options) *rbacv1.Role {
	return &rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(ControlPlaneName, o.Namespace), Rules: namespaceRules()}
}

func roleBinding(o Options) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"),
		ObjectMeta: meta(ControlPlaneName, o.Namespace),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: ControlPlaneName},
		Subjects:   subjects(o),
	}
}
