package k8stest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/goleak"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// DefaultStartTimeout bounds the start of each process when
// Options.StartTimeout is zero. kube-apiserver takes a few seconds alone;
// on 2 cores with other test packages compiling and running beside it, it
// can take much longer.
const DefaultStartTimeout = 2 * time.Minute

// stopTimeout bounds how long a process has to exit after SIGTERM before it
// is killed.
const stopTimeout = 30 * time.Second

// Options configure a control plane. The zero value is etcd and
// kube-apiserver with no CRDs.
type Options struct {
	// CRDPaths are files or directories of CustomResourceDefinition YAML or
	// JSON, installed (and established) before the environment is returned.
	// A missing path is an error. Documents of other kinds are ignored.
	CRDPaths []string
	// CRDs are installed with those of CRDPaths.
	CRDs []*apiextensionsv1.CustomResourceDefinition
	// GatewayAPI installs the Gateway API standard-channel CRDs of the
	// gateway-api module version weft requires (GatewayAPIStandardCRDs).
	GatewayAPI bool

	// ControllerManager starts kube-controller-manager too, with every
	// default controller (EndpointSlices, ServiceAccounts and their
	// tokens' root CA, namespace deletion, garbage collection, ...), the
	// apiserver's service-account signing key and an admin kubeconfig. The
	// environment is returned once its ServiceAccount controller has created
	// default/default.
	ControllerManager bool

	// APIServerArgs set kube-apiserver flags (name without "--"; several
	// values repeat the flag), replacing envtest's defaults of the same name.
	APIServerArgs map[string][]string
	// ControllerManagerArgs set kube-controller-manager flags likewise.
	ControllerManagerArgs map[string][]string

	// StartTimeout bounds the start of each process (envtest retries a
	// failed start of etcd and kube-apiserver up to 5 times). Zero means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// AssetsDir is where the binaries are; empty means AssetsDir().
	AssetsDir string
	// Output, when not nil, receives everything the processes write. The
	// latest output of each is kept regardless and shown in start errors.
	Output io.Writer
	// Logger receives the harness's messages, and envtest's through
	// controller-runtime's logger, which New points at it (otherwise
	// controller-runtime prints a warning with a stack trace 30 seconds into
	// the test binary). Nil means slog.Default().
	Logger *slog.Logger
}

// Env is a running control plane.
type Env struct {
	// Config is an admin (system:masters) client configuration for the
	// apiserver, over TLS on loopback.
	Config *rest.Config
	// Clientset is a client from Config.
	Clientset *kubernetes.Clientset
	// KubeconfigPath is a kubeconfig file with Config, for processes a test
	// starts (removed by Stop).
	KubeconfigPath string
	// StartDuration is how long New took, CRDs and kube-controller-manager
	// included.
	StartDuration time.Duration
	// ServiceAccountKeyFile is the PEM private key (PKCS#8) the apiserver
	// signs ServiceAccount tokens with, so tests can mint tokens the real
	// apiserver would have signed (e.g. already expired ones).
	ServiceAccountKeyFile string

	te         *envtest.Environment
	httpClient *http.Client
	kcm        *controllerManager
	dir        string

	stopOnce sync.Once
	stopErr  error
}

// New starts a control plane and returns once the apiserver serves, the
// default namespace exists and the CRDs are established. ctx bounds what New
// waits for itself; envtest's own start of etcd and kube-apiserver is bounded
// by Options.StartTimeout. The processes outlive ctx: Stop ends them.
func New(ctx context.Context, opts Options) (*Env, error) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting the Kubernetes test control plane: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctrllog.SetLogger(logr.FromSlogHandler(logger.Handler()))

	assets := opts.AssetsDir
	if assets == "" {
		var err error
		if assets, err = AssetsDir(); err != nil {
			return nil, err
		}
	}
	names := []string{binEtcd, binAPIServer}
	if opts.ControllerManager {
		names = append(names, binControllerManager)
	}
	bins, err := binaryPaths(assets, names...)
	if err != nil {
		return nil, err
	}

	crdPaths := slices.Clone(opts.CRDPaths)
	if opts.GatewayAPI {
		dir, err := GatewayAPIStandardCRDs(ctx)
		if err != nil {
			return nil, fmt.Errorf("installing the Gateway API CRDs: %w", err)
		}
		crdPaths = append(crdPaths, dir)
	}
	startTimeout := opts.StartTimeout
	if startTimeout <= 0 {
		startTimeout = DefaultStartTimeout
	}

	dir, err := os.MkdirTemp("", "weft-k8stest-")
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes test control plane's directory: %w", err)
	}
	env := &Env{dir: dir}
	ok := false
	defer func() {
		if !ok {
			// Whatever was started: the error that brought us here is the
			// one to report.
			_ = env.Stop()
		}
	}()

	saPub, saKey, err := writeServiceAccountKey(dir)
	if err != nil {
		return nil, err
	}

	etcdOut, apiOut := newTailWriter(opts.Output), newTailWriter(opts.Output)
	env.te = &envtest.Environment{
		ControlPlane: envtest.ControlPlane{
			Etcd:      &envtest.Etcd{Path: bins[binEtcd], Out: etcdOut, Err: etcdOut},
			APIServer: &envtest.APIServer{Path: bins[binAPIServer], Out: apiOut, Err: apiOut},
		},
		CRDs:                     opts.CRDs,
		CRDDirectoryPaths:        crdPaths,
		ErrorIfCRDPathMissing:    true,
		DownloadBinaryAssets:     false,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  stopTimeout,
	}
	args := env.te.ControlPlane.APIServer.Configure()
	// A key pair of our own rather than envtest's, so that
	// kube-controller-manager can sign with the key the apiserver verifies.
	args.Set("service-account-key-file", saPub)
	args.Set("service-account-signing-key-file", saKey)
	for name, values := range opts.APIServerArgs {
		args.Set(name, values...)
	}

	cfg, err := env.te.Start()
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver %s from %s (Options.Output shows all they write): %w%s%s",
			KubernetesVersion, assets, err, apiOut.describe(binAPIServer, 40), etcdOut.describe(binEtcd, 10))
	}
	env.Config = cfg
	if env.httpClient, err = rest.HTTPClientFor(cfg); err != nil {
		return nil, fmt.Errorf("building an HTTP client for the test apiserver: %w", err)
	}
	if env.Clientset, err = kubernetes.NewForConfigAndClient(cfg, env.httpClient); err != nil {
		return nil, fmt.Errorf("building a clientset for the test apiserver: %w", err)
	}
	env.KubeconfigPath = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(env.KubeconfigPath, env.te.KubeConfig, 0o600); err != nil {
		return nil, fmt.Errorf("writing the test apiserver's kubeconfig: %w", err)
	}
	apiReady := time.Since(start)

	if opts.ControllerManager {
		caFile := filepath.Join(dir, "apiserver-ca.crt")
		if err := os.WriteFile(caFile, env.te.ControlPlane.APIServer.SecureServing.CA, 0o600); err != nil {
			return nil, fmt.Errorf("writing the test apiserver's CA for kube-controller-manager: %w", err)
		}
		flags := map[string][]string{
			"kubeconfig":                       {env.KubeconfigPath},
			"service-account-private-key-file": {saKey},
			"root-ca-file":                     {caFile},
			"leader-elect":                     {"false"},
			"use-service-account-credentials":  {"false"},
			// No serving: nothing here reads its metrics or health, and a
			// fixed port would collide between test packages.
			"secure-port": {"0"},
		}
		for name, values := range opts.ControllerManagerArgs {
			flags[name] = values
		}
		env.kcm, err = startControllerManager(ctx, bins[binControllerManager], flags,
			newTailWriter(opts.Output), env.Clientset, startTimeout)
		if err != nil {
			return nil, err
		}
	}

	env.ServiceAccountKeyFile = saKey
	env.StartDuration = time.Since(start)
	logger.Info("kubernetes test control plane started",
		"version", KubernetesVersion, "apiserver", cfg.Host, "apiserver_ready", apiReady.Round(time.Millisecond),
		"controller_manager", opts.ControllerManager, "elapsed", env.StartDuration.Round(time.Millisecond))
	ok = true
	return env, nil
}

// Stop stops kube-controller-manager, kube-apiserver and etcd, and removes
// their files. It is safe to call more than once; later calls return the
// first one's result.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		var errs []error
		if e.kcm != nil {
			if err := e.kcm.stop(); err != nil {
				errs = append(errs, err)
			}
		}
		if e.httpClient != nil {
			e.httpClient.CloseIdleConnections()
		}
		if e.te != nil {
			if err := e.te.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping kube-apiserver and etcd: %w", err))
			}
		}
		if err := os.RemoveAll(e.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing the test control plane's directory: %w", err))
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// Start starts a control plane for one test and stops it in t.Cleanup. When
// it cannot start (the binaries are missing, for one), the test fails.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	env, err := New(t.Context(), opts)
	if err != nil {
		t.Fatalf("k8stest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("k8stest: %v", err)
		}
	})
	t.Logf("k8stest: Kubernetes %s control plane at %s started in %v",
		KubernetesVersion, env.Config.Host, env.StartDuration.Round(time.Millisecond))
	return env
}

// Shared is one control plane for all the tests of a package: the first
// test that calls Get starts it, and TestMain calls Stop after m.Run (see the
// package documentation). Declare it in a _test.go file. A start that failed
// fails every test that calls Get, with the same error.
type Shared struct {
	// Options are those of the control plane; set them before the first Get.
	Options Options

	mu      sync.Mutex
	started bool
	env     *Env
	err     error
}

// Get returns the package's control plane, starting it on the first call,
// and fails the test when it could not start.
func (s *Shared) Get(t testing.TB) *Env {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		s.env, s.err = New(t.Context(), s.Options)
		if s.err == nil {
			t.Logf("k8stest: Kubernetes %s control plane at %s started in %v (shared by this package's tests)",
				KubernetesVersion, s.env.Config.Host, s.env.StartDuration.Round(time.Millisecond))
		}
	}
	if s.err != nil {
		t.Fatalf("k8stest: %v", s.err)
	}
	return s.env
}

// Stop stops the control plane if one was started.
func (s *Shared) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.env == nil {
		return nil
	}
	return s.env.Stop()
}

// writeServiceAccountKey writes a new ECDSA P-256 key pair for signing and
// verifying ServiceAccount tokens into dir, and returns the paths of the
// public and private key files.
func writeServiceAccountKey(dir string) (pub, priv string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generating the service-account signing key: %w", err)
	}
	privDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("encoding the service-account signing key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("encoding the service-account public key: %w", err)
	}
	priv = filepath.Join(dir, "sa.key")
	pub = filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("writing the service-account signing key: %w", err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("writing the service-account public key: %w", err)
	}
	return pub, priv, nil
}

// Main runs the tests of a package that share s, then stops s and, when
// everything passed, looks for leaked goroutines; it returns the exit code.
// A package's TestMain is then: os.Exit(k8stest.Main(m, &kube)).
func Main(m *testing.M, s *Shared) int {
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the Kubernetes test control plane: %v\n", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	return code
}
