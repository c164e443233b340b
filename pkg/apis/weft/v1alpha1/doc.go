// Package v1alpha1 is the weft.dev/v1alpha1 API: Workload, a host that is not
// a pod (a VM, a bare-metal server, a process on a laptop) and takes part in
// the mesh. Services select Workloads by their labels, as they select pods.
//
// The universal-mode file source (internal/control/source/file) decodes
// these types; deploy/crds holds the CustomResourceDefinition generated from
// them.
//
// +kubebuilder:object:generate=true
// +groupName=weft.dev
package v1alpha1
