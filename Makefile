# weft: build, generate, lint and test. `make test` is what CI runs.
GO           ?= go
BIN          := $(CURDIR)/.bin
STATICCHECK  := $(BIN)/staticcheck
PROTOC_GEN_GO:= $(BIN)/protoc-gen-go
PROTOC_GEN_GO_GRPC := $(BIN)/protoc-gen-go-grpc
CONTROLLER_GEN := $(BIN)/controller-gen
STATICCHECK_VERSION   := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
# controller-tools v0.21 is the release built on k8s.io v0.36, as weft is.
CONTROLLER_GEN_VERSION := v0.21.0
# weft-proxy is built without gRPC's x/net/trace (and the html/template it
# pulls in): 2.5 MB less resident memory per proxy, measured. The tag only
# drops gRPC's request tracing, which the proxy does not use.
PROXY_TAGS   := grpcnotrace
# -race everywhere: every package here is small enough for it on 2 cores.
TEST_FLAGS   ?= -race -count=1 -timeout 15m

.PHONY: all build test lint vet staticcheck fmt-check gen gen-check tools k8s-env bench bench-scale bench-kube-scale demo up clean image

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/weft ./cmd/weft-demo
	$(GO) build -tags $(PROXY_TAGS) -o $(BIN)/ ./cmd/weft-proxy

# The images, on a machine with a container engine (this one has none):
# static, non-root, distroless (deploy/docker). VERSION is linked into weft and
# names the images `weft install` installs: push both with the same tag.
IMAGE_REGISTRY ?= ghcr.io/weft-mesh
VERSION        ?= dev
image:
	docker build -f deploy/docker/weft.Dockerfile --build-arg VERSION=$(VERSION) --build-arg REGISTRY=$(IMAGE_REGISTRY) -t $(IMAGE_REGISTRY)/weft:$(VERSION) .
	docker build -f deploy/docker/weft-proxy.Dockerfile -t $(IMAGE_REGISTRY)/weft-proxy:$(VERSION) .

# The mesh on this machine: control plane, demo services with their proxies.
up: build
	$(BIN)/weft up

$(STATICCHECK):
	GOBIN=$(BIN) GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(PROTOC_GEN_GO):
	GOBIN=$(BIN) GOFLAGS= $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(PROTOC_GEN_GO_GRPC):
	GOBIN=$(BIN) GOFLAGS= $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

$(CONTROLLER_GEN):
	GOBIN=$(BIN) GOFLAGS= $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)

tools: $(STATICCHECK) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) $(CONTROLLER_GEN)

# Files `make gen` writes: Go code from api/proto, the deep-copy methods of
# the API types in pkg/apis, and their CRDs in deploy/crds; the Helm chart in
# deploy/helm/weft, generated from internal/install (what `weft install` renders).
GENERATED := api/gen deploy/crds ':(glob)pkg/apis/**/zz_generated.*.go' deploy/helm

# Regenerate Go code from api/proto (needs protoc: apt-get install protobuf-compiler),
# and the deep-copy methods and CRDs of pkg/apis (controller-gen; floats are
# allowed: the file source reads retryRatio and successRateStdevFactor as numbers).
gen: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) $(CONTROLLER_GEN)
	PATH=$(BIN):$$PATH protoc -I api/proto --go_out=api/gen --go_opt=paths=source_relative \
		--go-grpc_out=api/gen --go-grpc_opt=paths=source_relative \
		$$(cd api/proto && find . -name '*.proto' | sed 's|^\./||')
	$(CONTROLLER_GEN) object paths=./pkg/apis/...
	rm -f deploy/crds/*.yaml
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./pkg/apis/... output:crd:artifacts:config=deploy/crds
	$(GO) run ./internal/install/chartgen deploy/helm/weft

# Fails when the committed generated code is not what `make gen` writes.
gen-check: gen
	@git diff --exit-code -- $(GENERATED) || { echo "generated files are stale (api/gen, deploy/crds, pkg/apis deep copies): run 'make gen' and commit"; exit 1; }
	@new=$$(git ls-files --others --exclude-standard -- $(GENERATED)); if [ -n "$$new" ]; then echo "generated files are not committed (run 'make gen' and commit): $$new"; exit 1; fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

lint: fmt-check vet staticcheck

# The Kubernetes control plane the tests run (etcd, kube-apiserver,
# kube-controller-manager), built from the Go module proxy into
# $WEFT_K8S_CACHE/<version>/ (default ~/.cache/weft-k8s), where internal/k8stest
# finds it: about 6 minutes on 2 cores the first time, nothing afterwards.
k8s-env:
	GO=$(GO) bash hack/k8s-env.sh

# The whole suite: lint, generated code current, every test with -race.
test: lint gen-check k8s-env
	$(GO) test $(TEST_FLAGS) ./...

# Benchmarks against the direct baseline and an HAProxy pair (see bench/README.md).
bench: build
	bash bench/run.sh

# The control plane at 1,000 services and 10,000 workloads with 200 proxy
# streams (WEFT_SCALE_PROXIES, WEFT_SCALE_CHANGES); see docs/benchmarks.md.
bench-scale:
	$(GO) test -run '^$$' -bench ControlPlaneScale -benchtime 1x ./test/scale

# 1,000 Services and 10,000 endpoints on the real test apiserver (make k8s-env).
bench-kube-scale:
	$(GO) test -run '^$$' -bench KubeScale -benchtime 1x -timeout 30m ./test/kubescale

clean:
	rm -rf $(BIN)

# A demo backend behind a meshed weft-proxy pair on this machine (until `weft up`).
demo:
	bash examples/demo.sh
