// Package k8stest runs a real Kubernetes control plane for tests: etcd and
// kube-apiserver, and on request kube-controller-manager, as child processes
// on loopback, with an admin client for the test.
//
// The binaries are not downloaded: hack/k8s-env.sh (`make k8s-env`, which
// `make test` runs first) builds them from the Go module proxy into
// ${WEFT_K8S_CACHE:-$HOME/.cache/weft-k8s}/<KubernetesVersion>/, and this
// package looks for them there. When they are missing the test fails (it is
// not skipped) and says how to build them.
//
// The apiserver and etcd are started by controller-runtime's envtest, with
// its download off and the binary paths set explicitly (KUBEBUILDER_ASSETS
// and TEST_ASSET_* are not consulted, so a set-up for another project cannot
// swap the versions). kube-controller-manager, which envtest does not run, is
// started here with the apiserver's service-account signing key and an admin
// kubeconfig; it is off by default because most tests do not need its
// controllers (EndpointSlices, default ServiceAccounts, namespace deletion,
// garbage collection) and it costs start time and CPU.
//
// A control plane takes several seconds to start on 2 cores, so a test
// package runs one for all its tests: it declares a Shared in a _test.go file
// and stops it in TestMain:
//
//	var kube = k8stest.Shared{Options: k8stest.Options{GatewayAPI: true}}
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		if err := kube.Stop(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			code = 1
//		}
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		env := kube.Get(t)
//		// env.Clientset, env.Config ...
//	}
//
// Start(t, opts) gives a test a control plane of its own, stopped in
// t.Cleanup; New and Env.Stop are the same without a testing.TB.
package k8stest
