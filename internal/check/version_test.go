package check

import (
	"strings"
	"testing"
)

func TestVersionOutcome(t *testing.T) {
	for _, tc := range []struct {
		version  string
		want     Status
		wantHint string
	}{
		{"v1.29.0", OK, ""},
		{"v1.36.1", OK, ""},
		{"v1.29.4-gke.1043002", OK, ""},
		{"v2.0.0", OK, ""},
		{"v1.28.9", Error, "native sidecar"},
		{"v1.28.15-eks-a737599", Error, "upgrade the cluster to Kubernetes 1.29 or later"},
		{"v1.9.0", Error, "native sidecar"},
		{"not a version", Error, "Kubernetes API server"},
	} {
		o := versionOutcome(tc.version)
		if o.Status != tc.want || !strings.Contains(o.Hint, tc.wantHint) {
			t.Errorf("%s: %v %q (hint %q), want %v with hint containing %q", tc.version, o.Status, o.Message, o.Hint, tc.want, tc.wantHint)
		}
	}
}
