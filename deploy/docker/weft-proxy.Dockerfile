# syntax=docker/dockerfile:1
# weft-proxy: the data plane, a static binary on a distroless base, non-root.
#
# Build from the repository root (the machine weft is developed on has no container engine; see
# docs/install.md and `make image`):
#   docker build -f deploy/docker/weft-proxy.Dockerfile -t ghcr.io/weft-mesh/weft-proxy:v0.1.0 .
#
# The traffic-capture step (`weft-proxy init`, issue 7) needs iptables, which this image does not
# have: it gets an image of its own when it lands.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer changes only with go.mod and go.sum.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (no cgo), reproducible (-trimpath), stripped; grpcnotrace drops gRPC's x/net/trace and the
# html/template it pulls in (2.5 MB less resident memory per proxy, see the Makefile's PROXY_TAGS).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false -tags grpcnotrace -ldflags "-s -w" \
      -o /out/weft-proxy ./cmd/weft-proxy

# No shell, no package manager; the "nonroot" user is 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/weft-proxy /weft-proxy
USER 65532:65532
ENTRYPOINT ["/weft-proxy"]
