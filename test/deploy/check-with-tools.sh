#!/usr/bin/env bash
# Checks the deploy files with the tools that will run them, when those tools are installed:
# `docker compose config` must accept deploy/docker-compose.yml and see nodes n1, n2, n3, and
# `kubectl kustomize` / `kubectl apply --dry-run=client` must accept deploy/kubernetes. The vitest
# files beside this script check the same files without any tool; this script adds the tools'
# own verdict. A missing tool (or, for the dry run, an unreachable cluster) is reported plainly,
# not passed off as a success.
#
# Usage: npm run check:deploy            exit 0 if everything that could run passed
#        CHECK_DEPLOY_STRICT=1 npm run check:deploy   also exit 1 if a check could not run
set -uo pipefail

cd "$(dirname "$0")/../.."
COMPOSE_FILE=deploy/docker-compose.yml
K8S_DIR=deploy/kubernetes
failed=0
not_run=0

pass() { echo "PASS     $1"; }
fail() { echo "FAIL     $1"; failed=1; }
not_checked() { echo "NOT RUN  $1"; not_run=1; }

check_compose() {
  if ! docker compose version >/dev/null 2>&1; then
    not_checked "docker compose config: Docker Compose is not installed here"
    return
  fi
  local output services
  if ! output=$(docker compose -f "$COMPOSE_FILE" config --quiet 2>&1); then
    fail "docker compose config rejected $COMPOSE_FILE:"
    echo "$output"
    return
  fi
  services=$(docker compose -f "$COMPOSE_FILE" config --services | sort | tr '\n' ' ')
  if [ "$services" = "n1 n2 n3 " ]; then
    pass "docker compose config accepts $COMPOSE_FILE (services: $services)"
  else
    fail "docker compose config sees services '$services', expected 'n1 n2 n3'"
  fi
}

check_kubernetes() {
  if ! kubectl version --client >/dev/null 2>&1; then
    not_checked "kubectl kustomize / apply --dry-run=client: kubectl is not installed here"
    return
  fi
  local output
  if output=$(kubectl kustomize "$K8S_DIR" 2>&1); then
    pass "kubectl kustomize builds $K8S_DIR ($(grep -c '^kind:' <<<"$output") objects)"
  else
    fail "kubectl kustomize rejected $K8S_DIR:"
    echo "$output"
    return
  fi
  # A client-side dry run still asks the API server which kinds exist, so it needs a cluster.
  if ! kubectl cluster-info --request-timeout=5s >/dev/null 2>&1; then
    not_checked "kubectl apply --dry-run=client: no reachable Kubernetes cluster in the current context"
    return
  fi
  if output=$(kubectl apply --dry-run=client -k "$K8S_DIR" 2>&1); then
    pass "kubectl apply --dry-run=client accepts $K8S_DIR"
  else
    fail "kubectl apply --dry-run=client rejected $K8S_DIR:"
    echo "$output"
  fi
}

check_compose
check_kubernetes

if [ "$failed" -ne 0 ]; then
  echo "check:deploy: FAILED"
  exit 1
fi
if [ "$not_run" -ne 0 ]; then
  echo "check:deploy: passed what could run; some checks did NOT run (see NOT RUN above)"
  [ "${CHECK_DEPLOY_STRICT:-0}" = "1" ] && exit 1
  exit 0
fi
echo "check:deploy: every check ran and passed"
