# syntax=docker/dockerfile:1
# weft: the CLI and the control plane (`weft control`), a static binary on a distroless base, non-root.
#
# Build from the repository root (the machine weft is developed on has no container engine; see
# docs/install.md and `make image`):
#   docker build -f deploy/docker/weft.Dockerfile --build-arg VERSION=v0.1.0 -t ghcr.io/weft-mesh/weft:v0.1.0 .
#
# VERSION and REGISTRY are linked into the binary: they name the images `weft install` installs
# (internal/install/image.go), so build weft-proxy with the same VERSION.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer changes only with go.mod and go.sum.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG REGISTRY=ghcr.io/weft-mesh
# Static (no cgo, so no libc to match), reproducible (-trimpath), stripped.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/weft-mesh/weft/internal/install.imageRegistry=${REGISTRY} -X github.com/weft-mesh/weft/internal/install.imageTag=${VERSION}" \
      -o /out/weft ./cmd/weft

# No shell, no package manager; the "nonroot" user is 65532, as in the install manifests.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/weft /weft
USER 65532:65532
ENTRYPOINT ["/weft"]
