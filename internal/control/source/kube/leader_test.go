package kube_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/kube"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestLeaderElection: of two replicas, only the one holding the Lease
// writes status; when it stops, the other takes the Lease over and
// writes.
func TestLeaderElection(t *testing.T) {
	c := newCluster(t, nil, nil)
	c.service("web", corev1.ServicePort{Name: "http", Port: 80})
	election := func(id string) *kube.LeaderElection {
		return &kube.LeaderElection{Namespace: c.ns, Name: "weft-control", Identity: id,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond}
	}
	a, stopA := runSource(t, model.NewStore(), kube.Options{Name: "a", LeaderElection: election("replica-a")})
	b, stopB := runSource(t, model.NewStore(), kube.Options{Name: "b", LeaderElection: election("replica-b")})
	replicas := map[string]*kube.Source{"replica-a": a, "replica-b": b}
	stops := map[string]func(){"replica-a": stopA, "replica-b": stopB}

	holder := func() string {
		l, err := c.cs.CoordinationV1().Leases(c.ns).Get(t.Context(), "weft-control", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	var leader string
	waitFor(t, "one replica leads", func() string {
		leader = holder()
		if replicas[leader] == nil || !replicas[leader].Leading() {
			return fmt.Sprintf("lease holder %q", leader)
		}
		return ""
	})
	follower := map[string]string{"replica-a": "replica-b", "replica-b": "replica-a"}[leader]

	c.create(httpRoute("first", []gwv1.ParentReference{serviceParent("web", 0)}, backend("", "nope", 80)))
	waitFor(t, "the leader writes the route's status", func() string {
		if got, want := routeParents(c, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "first", Namespace: c.ns}}),
			"web: Accepted=True Accepted, ResolvedRefs=False BackendNotFound"; got != want {
			return fmt.Sprintf("got %q, want %q", got, want)
		}
		return ""
	})
	if replicas[leader].StatusWrites() == 0 || replicas[follower].StatusWrites() != 0 || replicas[follower].Leading() {
		t.Fatalf("status writes: leader %s %d, follower %s %d (leading %v); want the leader's only",
			leader, replicas[leader].StatusWrites(), follower, replicas[follower].StatusWrites(), replicas[follower].Leading())
	}

	stops[leader]()
	waitFor(t, "the other replica takes the lease over", func() string {
		if h := holder(); h != follower || !replicas[follower].Leading() {
			return fmt.Sprintf("lease holder %q, %s leading %v", h, follower, replicas[follower].Leading())
		}
		return ""
	})
	c.create(httpRoute("second", []gwv1.ParentReference{serviceParent("web", 0)}, backend("", "web", 80)))
	waitFor(t, "the new leader writes the new route's status", func() string {
		if got, want := routeParents(c, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: c.ns}}),
			"web: Accepted=True Accepted, ResolvedRefs=True ResolvedRefs"; got != want {
			return fmt.Sprintf("got %q, want %q", got, want)
		}
		return ""
	})
	if replicas[follower].StatusWrites() == 0 {
		t.Errorf("the new leader %s wrote no status", follower)
	}
}
