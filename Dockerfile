# kumo: a static binary on a minimal, non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# goolm: pure-Go Matrix encryption, so the binary needs no cgo and no libolm.
RUN CGO_ENABLED=0 go build -tags goolm -trimpath -ldflags='-s -w' -o /out/kumo ./cmd/kumo

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kumo /kumo
# kumo writes nothing to disk; mount config.yaml read-only and pass secrets as KUMO_* variables.
WORKDIR /etc/kumo
USER nonroot:nonroot
ENV KUMO_HTTP_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/kumo"]
