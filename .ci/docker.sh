#!/usr/bin/env bash
# Builds kumo's image from the Dockerfile and runs it, as CI does:
#   1. the image carries no KUMO_HTTP_LISTEN (a mounted config's http.listen is what counts);
#   2. with no configuration mounted the container refuses to start (a public web chat on the
#      development backend's simulated payments needs an explicit lightning.backend: dev);
#   3. with a configuration mounted it serves /healthz on that configuration's http.listen.
#
# Engines, in order: Docker (when a daemon answers), else Debian's buildah (daemonless; installed
# if missing) to build, and podman to run, or `buildah run` with chroot isolation where podman's
# runtime cannot start containers (this project's sandbox: crun's setrlimit is refused). Where no
# registry is reachable, the Dockerfile's two base images are replaced through its build arguments
# by local stand-ins made from this machine's Go toolchain and a distroless-like root file system;
# the script says so. Usage: .ci/docker.sh [image-name]
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-localhost/kumo:ci}
say() { echo "docker.sh: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
work=$(mktemp -d)
cleanup() {
  [ -n "${server_pid:-}" ] && stop "$server_pid"
  for x in "${ctr:-}" "${c:-}"; do [ -n "$x" ] && buildah "${storage[@]}" rm "$x" >/dev/null 2>&1; done
  # What earlier builds left untagged (vfs keeps whole copies).
  command -v buildah >/dev/null 2>&1 && buildah "${storage[@]}" rmi --prune >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
storage=(--storage-driver vfs)

# ---- build -------------------------------------------------------------------------------------
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
  say "building $image with docker"
  docker build -q -t "$image" . >/dev/null
else
  if ! command -v buildah >/dev/null 2>&1; then
    say "no Docker daemon; installing Debian's buildah and podman"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman >/dev/null
  fi
  engine=buildah
  go_image=golang:1.26-bookworm
  runtime_image=gcr.io/distroless/static-debian12:nonroot
  args=()
  if timeout 60 buildah "${storage[@]}" pull -q "$runtime_image" >/dev/null 2>&1 &&
    timeout 300 buildah "${storage[@]}" pull -q "$go_image" >/dev/null 2>&1; then
    say "building $image with buildah from $go_image and $runtime_image"
  else
    # No registry: the same Dockerfile, with stand-ins for its two base images.
    say "no registry reachable: building the Dockerfile with LOCAL STAND-INS for $go_image (this machine's Go at $(go env GOROOT)) and $runtime_image (a distroless-like root: passwd, group, CA certificates, /tmp)"
    goroot=$(go env GOROOT) modcache=$(go env GOMODCACHE) gocache=$(go env GOCACHE)
    go_stand_in=localhost/kumo-ci/go:$(go env GOVERSION)
    if ! buildah "${storage[@]}" inspect -t image "$go_stand_in" >/dev/null 2>&1; then
      c=$(buildah "${storage[@]}" from scratch)
      mkdir -p "$work/go/tmp" "$work/go/etc/ssl/certs" "$work/go/go/pkg/mod" "$work/go/root/.cache/go-build"
      chmod 1777 "$work/go/tmp"
      cp /etc/ssl/certs/ca-certificates.crt "$work/go/etc/ssl/certs/"
      buildah "${storage[@]}" copy "$c" "$work/go" / >/dev/null
      buildah "${storage[@]}" copy "$c" "$goroot" /usr/local/go >/dev/null
      buildah "${storage[@]}" config --env PATH=/usr/local/go/bin:/bin --env GOPATH=/go --env GOTOOLCHAIN=local \
        --env GOCACHE=/root/.cache/go-build --env GOPROXY="$(go env GOPROXY)" "$c"
      buildah "${storage[@]}" commit -q "$c" "$go_stand_in" >/dev/null
      buildah "${storage[@]}" rm "$c" >/dev/null
      c=
    fi
    c=$(buildah "${storage[@]}" from scratch)
    mkdir -p "$work/rt/etc/ssl/certs" "$work/rt/tmp" "$work/rt/home/nonroot"
    chmod 1777 "$work/rt/tmp"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$work/rt/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$work/rt/etc/group"
    cp /etc/ssl/certs/ca-certificates.crt "$work/rt/etc/ssl/certs/"
    buildah "${storage[@]}" copy "$c" "$work/rt" / >/dev/null
    buildah "${storage[@]}" commit -q "$c" localhost/kumo-ci/static:stand-in >/dev/null
    buildah "${storage[@]}" rm "$c" >/dev/null
    c=
    go_image=$go_stand_in runtime_image=localhost/kumo-ci/static:stand-in
    # The module and build caches come from this machine, read-write so that a module missing here
    # is fetched through the Go proxy.
    args=(--volume "$modcache:/go/pkg/mod" --volume "$gocache:/root/.cache/go-build")
  fi
  buildah "${storage[@]}" bud -q --isolation chroot --pull=never "${args[@]}" \
    --build-arg GO_IMAGE="$go_image" --build-arg RUNTIME_IMAGE="$runtime_image" -t "$image" . >/dev/null
fi
say "built $image"

# ---- what the image says about itself ----------------------------------------------------------
if [ "$engine" = docker ]; then
  env=$(docker image inspect -f '{{json .Config.Env}}' "$image")
  user=$(docker image inspect -f '{{.Config.User}}' "$image")
else
  env=$(buildah "${storage[@]}" inspect -t image -f '{{.OCIv1.Config.Env}}' "$image")
  user=$(buildah "${storage[@]}" inspect -t image -f '{{.OCIv1.Config.User}}' "$image")
fi
case "$env" in *KUMO_*) fail "the image sets $env: a mounted config's values must count" ;; esac
[ "$user" = "65532:65532" ] || fail "the image runs as \"$user\", want the nonroot user 65532:65532"

# ---- run ---------------------------------------------------------------------------------------
# run [-v host:ctr]... -- args: runs the image's entrypoint with args (call it with &), with the
# host's network where the engine has no port mapping (buildah), the container's port published
# on the same number otherwise.
runner=$engine
if [ "$engine" = buildah ] && podman "${storage[@]}" run --rm --network none --entrypoint /kumo "$image" -h >/dev/null 2>"$work/podman.err"; then
  runner=podman
elif [ "$engine" = buildah ]; then
  say "podman cannot start containers here ($(tail -1 "$work/podman.err")): running with buildah run --isolation chroot"
fi
port=$((20000 + RANDOM % 20000))
# stop ends a run started in the background, and the container with it.
stop() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
run() {
  local vols=()
  while [ "$1" != -- ]; do vols+=("$1"); shift; done
  shift
  # exec: started with &, the engine's client is the background job, so stop's signal reaches it
  # (and through it the container) rather than a subshell.
  case $runner in
    docker) exec docker run --rm -p "127.0.0.1:$port:$port" "${vols[@]}" "$image" "$@" ;;
    podman) exec podman "${storage[@]}" run --rm -p "127.0.0.1:$port:$port" "${vols[@]}" "$image" "$@" ;;
    buildah) exec buildah "${storage[@]}" run --isolation chroot "${vols[@]}" "$ctr" -- /kumo "$@" ;;
  esac
}
if [ "$runner" = buildah ]; then
  ctr=$(buildah "${storage[@]}" from --pull=never "$image")
fi

# No configuration mounted: kumo must refuse (not serve a free public demo) and say which key.
run -- >"$work/demo.out" 2>&1 &
demo_pid=$!
deadline=$((SECONDS + 30))
while kill -0 "$demo_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
if kill -0 "$demo_pid" 2>/dev/null; then
  stop "$demo_pid"
  fail "with no configuration the container kept running (a public demo on simulated payments); output: $(head -c 600 "$work/demo.out")"
fi
set +e
wait "$demo_pid"
rc=$?
set -e
[ $rc -ne 0 ] || fail "with no configuration the container exited 0; output: $(head -c 600 "$work/demo.out")"
grep -q 'lightning.backend\|KUMO_LIGHTNING_BACKEND' "$work/demo.out" ||
  fail "the refusal does not name lightning.backend: $(head -c 600 "$work/demo.out")"
say "ok: with no configuration the container refuses to start (exit $rc): $(grep -m1 -i 'backend' "$work/demo.out" | head -c 200)"

# A configuration mounted: its http.listen is used as written; /healthz answers there.
cat >"$work/config.yaml" <<EOF
http:
  listen: 0.0.0.0:$port
web:
  enabled: true
lightning:
  backend: dev
EOF
chmod 644 "$work/config.yaml"
run -v "$work/config.yaml:/etc/kumo/config.yaml:ro" -- >"$work/run.out" 2>&1 &
server_pid=$!
deadline=$((SECONDS + 60))
until curl -fsS "http://127.0.0.1:$port/healthz" >"$work/health" 2>/dev/null; do
  kill -0 "$server_pid" 2>/dev/null || fail "the container with a configuration exited: $(head -c 600 "$work/run.out")"
  [ $SECONDS -lt $deadline ] || fail "no /healthz on :$port within 60s: $(head -c 600 "$work/run.out")"
  sleep 0.5
done
say "ok: with a configuration mounted, /healthz on its http.listen (:$port) says $(head -c 200 "$work/health")"
say "done ($runner)"
