package check

import (
	"fmt"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// MinKubernetesVersion is the oldest Kubernetes weft supports: injection
// adds the proxy as a native sidecar (an init container with
// restartPolicy: Always), enabled by default from 1.29.
const MinKubernetesVersion = "1.29"

// versionOutcome says whether the API server's gitVersion ("v1.30.2",
// "v1.29.4-gke.1043002") is supported.
func versionOutcome(gitVersion string) Outcome {
	v, err := utilversion.ParseGeneric(gitVersion)
	if err != nil {
		return Fail("check that the kubeconfig points at a Kubernetes API server",
			"the API server reports version %q, which is not a Kubernetes version: %v", gitVersion, err)
	}
	if !v.AtLeast(utilversion.MustParseGeneric(MinKubernetesVersion)) {
		return Fail(fmt.Sprintf("upgrade the cluster to Kubernetes %s or later: weft injects its proxy as a native sidecar "+
			"(an init container with restartPolicy: Always), which older versions do not run", MinKubernetesVersion),
			"the API server is Kubernetes %s; weft needs %s or later", gitVersion, MinKubernetesVersion)
	}
	return Pass("Kubernetes %s", gitVersion)
}
