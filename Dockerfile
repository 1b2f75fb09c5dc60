# kumo: a static binary on a minimal, non-root image. `.ci/docker.sh` builds and runs it in CI.
#
# The base images are build arguments only so that CI can build this same file where no registry
# is reachable (it substitutes local stand-ins); a normal build uses these defaults.
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
# goolm: pure-Go Matrix encryption, so the binary needs no cgo and no libolm.
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN ["go", "mod", "download"]
COPY . .
RUN ["go", "build", "-tags", "goolm", "-trimpath", "-ldflags=-s -w", "-o", "/out/kumo", "./cmd/kumo"]

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/kumo /kumo
# The image's own configuration, used only when none is mounted over it: it listens on every
# interface of the container but chooses no payment backend, so kumo refuses to start a public demo
# on simulated payments. Mount your config.yaml at /etc/kumo/config.yaml (its http.listen is used
# as written; no environment variable of the image overrides it) and pass secrets as KUMO_*.
COPY docker/config.yaml /etc/kumo/config.yaml
WORKDIR /etc/kumo
# distroless's nonroot user, by number so that a stand-in base needs no user database to run it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/kumo"]
