package apis_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	policyv1alpha1 "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
	weftv1alpha1 "github.com/weft-mesh/weft/pkg/apis/weft/v1alpha1"
)

// TestScheme checks that AddToScheme registers every type under its group,
// version and kind, lists included.
func TestScheme(t *testing.T) {
	s := newScheme(t)
	for obj, want := range map[runtime.Object]schema.GroupVersionKind{
		&weftv1alpha1.Workload{}:                  {Group: "weft.dev", Version: "v1alpha1", Kind: "Workload"},
		&weftv1alpha1.WorkloadList{}:              {Group: "weft.dev", Version: "v1alpha1", Kind: "WorkloadList"},
		&policyv1alpha1.RetryBudget{}:             {Group: "policy.weft.dev", Version: "v1alpha1", Kind: "RetryBudget"},
		&policyv1alpha1.CircuitBreakerList{}:      {Group: "policy.weft.dev", Version: "v1alpha1", Kind: "CircuitBreakerList"},
		&policyv1alpha1.AuthorizationPolicy{}:     {Group: "policy.weft.dev", Version: "v1alpha1", Kind: "AuthorizationPolicy"},
		&policyv1alpha1.MutualTLSPolicyList{}:     {Group: "policy.weft.dev", Version: "v1alpha1", Kind: "MutualTLSPolicyList"},
		&policyv1alpha1.AuthorizationPolicyList{}: {Group: "policy.weft.dev", Version: "v1alpha1", Kind: "AuthorizationPolicyList"},
	} {
		gvks, _, err := s.ObjectKinds(obj)
		if err != nil {
			t.Errorf("%T: %v", obj, err)
			continue
		}
		if len(gvks) != 1 || gvks[0] != want {
			t.Errorf("%T is registered as %v, want %v", obj, gvks, want)
		}
	}
}

// TestTypedRoundTrip creates the file source's fixture resources as typed
// objects, reads them back and checks that the apiserver kept every spec
// field (the mode default aside), and that universal mode accepts what the
// apiserver returns (kubectl get -o yaml, status and server fields
// included).
func TestTypedRoundTrip(t *testing.T) {
	s := newScheme(t)
	decoder := serializer.NewCodecFactory(s).UniversalDeserializer()
	root := "../../internal/control/source/file/testdata/mesh"
	var examples []example
	for _, f := range []string{"/workloads/web.yaml", "/workloads/catalog.yml", "/policies.yaml", "/security.yaml"} {
		data := readFile(t, root+f)
		examples = append(examples, weftDocuments(t, root+f, 1, data)...)
	}
	if len(examples) < 6 {
		t.Fatalf("found %d fixture documents, want at least 6", len(examples))
	}
	var ns []string
	for _, e := range examples {
		ns = append(ns, e.ns)
	}
	c := newClient(t, ns...)
	for _, e := range examples {
		t.Run(e.where+" "+e.kind, func(t *testing.T) {
			js, err := yaml.YAMLToJSON([]byte(e.doc))
			if err != nil {
				t.Fatal(err)
			}
			obj, _, err := decoder.Decode(js, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			cobj := obj.(client.Object)
			cobj.SetName("typed-" + cobj.GetName())
			cobj.SetCreationTimestamp(metav1.Time{}) // the apiserver sets it
			want := cobj.DeepCopyObject().(client.Object)
			if err := c.Create(t.Context(), cobj, client.FieldValidation("Strict")); err != nil {
				t.Fatalf("create: %v", err)
			}
			t.Cleanup(func() {
				if err := c.Delete(context.WithoutCancel(t.Context()), cobj); err != nil && !apierrors.IsNotFound(err) {
					t.Errorf("delete: %v", err)
				}
			})
			got := want.DeepCopyObject().(client.Object)
			if err := c.Get(t.Context(), client.ObjectKeyFromObject(cobj), got); err != nil {
				t.Fatal(err)
			}
			if ap, ok := want.(*policyv1alpha1.AuthorizationPolicy); ok && ap.Spec.Mode == "" {
				ap.Spec.Mode = policyv1alpha1.ModeEnforce // the CRD's default
			}
			if w, g := specOf(want), specOf(got); !reflect.DeepEqual(w, g) {
				t.Errorf("the apiserver returned another spec:\n got %#v\nwant %#v", g, w)
			}
			if ts := got.GetCreationTimestamp(); got.GetUID() == "" || ts.IsZero() {
				t.Errorf("not a stored object: %#v", got)
			}
			got.GetObjectKind().SetGroupVersionKind(want.GetObjectKind().GroupVersionKind())
			back, err := yaml.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if refused := universalVerdict(t, string(back)); len(refused) > 0 {
				t.Errorf("universal mode refuses what the apiserver returned: %q\n%s", refused, back)
			}
		})
	}
}

// specOf returns the Spec field of a typed object.
func specOf(obj runtime.Object) any {
	return reflect.ValueOf(obj).Elem().FieldByName("Spec").Interface()
}

// TestStatusSubresource checks that a policy's conditions are written
// through the status subresource only, and validated.
func TestStatusSubresource(t *testing.T) {
	c := newClient(t, "shop")
	p := &policyv1alpha1.AuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "status", Namespace: "shop"},
		Spec: policyv1alpha1.AuthorizationPolicySpec{
			Action:     policyv1alpha1.ActionDeny,
			TargetRefs: []policyv1alpha1.TargetReference{{Kind: "Service", Name: "web"}},
		},
		Status: policyv1alpha1.PolicyStatus{Conditions: []metav1.Condition{{Type: "Ignored", Status: metav1.ConditionTrue, Reason: "Ignored", LastTransitionTime: metav1.Now()}}},
	}
	if err := c.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Delete(context.WithoutCancel(t.Context()), p); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete: %v", err)
		}
	})
	if len(p.Status.Conditions) != 0 {
		t.Errorf("create kept a status: %v", p.Status.Conditions)
	}

	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: policyv1alpha1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: p.Generation})
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: policyv1alpha1.ConditionResolvedRefs, Status: metav1.ConditionFalse, Reason: "TargetNotFound", Message: "service shop/web does not exist"})
	if err := c.Status().Update(t.Context(), p); err != nil {
		t.Fatalf("status update: %v", err)
	}

	// A spec update leaves the status alone, whatever it carries.
	p.Spec.Mode = policyv1alpha1.ModeDryRun
	p.Status.Conditions = nil
	if err := c.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	got := &policyv1alpha1.AuthorizationPolicy{}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(p), got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Mode != policyv1alpha1.ModeDryRun {
		t.Errorf("mode %q, want DryRun", got.Spec.Mode)
	}
	if cond := meta.FindStatusCondition(got.Status.Conditions, policyv1alpha1.ConditionResolvedRefs); cond == nil || cond.Reason != "TargetNotFound" || len(got.Status.Conditions) != 2 {
		t.Errorf("conditions after a spec update: %+v", got.Status.Conditions)
	}

	// Conditions are validated: a reason is required.
	got.Status.Conditions[0].Reason = ""
	err := c.Status().Update(t.Context(), got)
	if err == nil || !strings.Contains(err.Error(), "status.conditions[0].reason") {
		t.Errorf("a condition without a reason: %v, want a refusal naming status.conditions[0].reason", err)
	}
}
