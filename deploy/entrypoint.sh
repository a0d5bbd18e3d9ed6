#!/bin/sh
# Container entrypoint: the first argument picks what the container runs.
#
#   gateway|registry|matching|reporting|events COMMAND [ARGS]   python -m <service> COMMAND ...
#                                                         (serve, migrate, demo, principal, ...)
#   migrate [SERVICE...]      migrate each named service, or every service in the image
#                             (registry, matching, reporting, events, gateway: the feed publishers
#                             first); each needs its <SERVICE>_DATABASE_URL
#   healthcheck URL           exit 0 when URL answers 200 (container healthchecks)
#   services                  list the services this image holds
#   anything else             run as given (python, sh, ...)
#
# Every branch execs, so the process that the runtime signals (PID 1) is the
# service itself: SIGTERM reaches uvicorn, which drains in-flight requests.
set -eu

APP_DIR=${APP_DIR:-/app}
ORDER="registry matching reporting events gateway"

module_of() {
    case "$1" in
        gateway) echo gateway ;;
        *) echo "services.$1" ;;
    esac
}

has_service() {
    case "$1" in
        gateway) [ -f "$APP_DIR/gateway/__main__.py" ] ;;
        registry | matching | reporting | events) [ -f "$APP_DIR/services/$1/__main__.py" ] ;;
        *) return 1 ;;
    esac
}

available_services() {
    for s in $ORDER; do
        if has_service "$s"; then printf '%s\n' "$s"; fi
    done
}

migrate() {
    if [ "$#" -eq 0 ]; then
        # shellcheck disable=SC2046
        set -- $(available_services)
    fi
    for s in "$@"; do
        if ! has_service "$s"; then
            echo "entrypoint: this image has no service '$s' (it has: $(available_services | tr '\n' ' '))" >&2
            exit 64
        fi
        var=$(printf '%s_DATABASE_URL' "$s" | tr '[:lower:]' '[:upper:]')
        if [ -z "$(printenv "$var" || true)" ]; then
            echo "entrypoint: $var is not set; refusing to migrate '$s' into a container-local SQLite file" >&2
            exit 64
        fi
        echo "entrypoint: migrating $s" >&2
        python -m "$(module_of "$s")" migrate
    done
}

cmd=${1:-}
case "$cmd" in
    gateway | registry | matching | reporting | events)
        shift
        if ! has_service "$cmd"; then
            echo "entrypoint: this image has no service '$cmd'" >&2
            exit 64
        fi
        exec python -m "$(module_of "$cmd")" "$@"
        ;;
    migrate)
        shift
        migrate "$@"
        ;;
    healthcheck)
        shift
        exec python "$APP_DIR/deploy/healthcheck.py" "$@"
        ;;
    services)
        available_services
        ;;
    "")
        echo "usage: SERVICE COMMAND | migrate [SERVICE...] | healthcheck URL | services | CMD..." >&2
        exit 64
        ;;
    *)
        exec "$@"
        ;;
esac
