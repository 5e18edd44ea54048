#!/usr/bin/env bash
# A Docker engine for ckslab's tests, on its own socket, state and data directories, so it
# never collides with an engine the user runs.
#
#   scripts/docker-engine.sh start   # install docker.io if no dockerd exists, start, wait
#   scripts/docker-engine.sh stop    # remove every container on it, stop dockerd, wait
#   scripts/docker-engine.sh env     # print DOCKER_HOST=...
#
# Last stdout line of start/env: DOCKER_HOST=unix:///run/ckslab-docker/docker.sock
# Use it as: export "$(scripts/docker-engine.sh start | tail -n1)"
#
# Where the capability bounding set is shorter than what the kernel knows (some CI sandboxes:
# no CAP_SYS_RESOURCE), Docker 20.10 cannot start --privileged containers (kind nodes); the
# engine then runs every container through tools/runc-capfix/runc-capfix, which drops the
# missing capabilities before calling runc. Not used where the bounding set is full.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
run=${CKSLAB_DOCKER_RUN:-/run/ckslab-docker}
data=${CKSLAB_DOCKER_DATA:-/var/lib/ckslab-docker}
sock="$run/docker.sock"
pidfile="$run/dockerd.pid"
log=${CKSLAB_DOCKER_LOG:-/var/log/ckslab-dockerd.log}
host="unix://$sock"

docker_cli() {
  if command -v docker >/dev/null 2>&1; then DOCKER_HOST=$host docker "$@"; else return 127; fi
}

running() {
  [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
  curl -fsS --max-time 3 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1
}

# Prints 1 when the bounding set lacks a capability the kernel knows.
short_bounding_set() {
  local last bnd full
  last=$(cat /proc/sys/kernel/cap_last_cap)
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  full=$(((1 << (last + 1)) - 1))
  (((16#$bnd & full) != full))
}

need_root() {
  if [[ $(id -u) != 0 ]]; then
    echo "docker-engine: $1 needs root (dockerd runs as root)" >&2
    exit 2
  fi
}

install_engine() {
  local pkgs=()
  command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
  command -v jq >/dev/null 2>&1 || pkgs+=(jq)
  command -v curl >/dev/null 2>&1 || pkgs+=(curl)
  command -v iptables >/dev/null 2>&1 || pkgs+=(iptables)
  ((${#pkgs[@]})) || return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "docker-engine: missing ${pkgs[*]} and no apt-get; install a Docker engine" >&2
    exit 2
  fi
  echo "docker-engine: installing ${pkgs[*]} (apt-get)..."
  # docker.io's postinst may try to start the system engine; policy-rc.d keeps it stopped.
  local prc=/usr/sbin/policy-rc.d created=""
  if [[ ! -e $prc ]]; then printf '#!/bin/sh\nexit 101\n' >"$prc" && chmod +x "$prc" && created=1; fi
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"; } >&2
  [[ -n $created ]] && rm -f "$prc"
  return 0
}

# On a cgroup v1 host whose init mounted only some controllers (our VMs leave hugetlb, net_cls,
# net_prio and perf_event unmounted), a kind node's systemd mounts the rest itself after kind's
# entrypoint has made the kubelet's cgroups, and the kubelet then refuses to start ("cgroup
# [kubelet] has some missing paths: /sys/fs/cgroup/hugetlb/kubelet.slice"), on some creates
# and not others. Mounting every enabled controller on the host, as a systemd host does, lets
# the entrypoint see them all. Test harness, like runc-capfix; nothing happens on cgroup v2.
mount_v1_controllers() {
  [[ -d /sys/fs/cgroup/memory ]] || return 0
  local name hierarchy _n enabled
  while read -r name hierarchy _n enabled; do
    [[ $name == \#* || $enabled != 1 || $hierarchy != 0 ]] && continue
    mkdir -p "/sys/fs/cgroup/$name" 2>/dev/null || continue
    if mount -t cgroup -o "$name" cgroup "/sys/fs/cgroup/$name" 2>/dev/null; then
      echo "docker-engine: mounted the $name cgroup controller (the host's init left it out)"
    fi
  done </proc/cgroups
}

start() {
  need_root start
  mount_v1_controllers
  if running && answers; then
    echo "docker-engine: already running (pid $(cat "$pidfile"))"
    echo "DOCKER_HOST=$host"
    return
  fi
  install_engine
  mkdir -p "$run" "$data" "$(dirname "$log")"
  local args=(
    -H "$host" --pidfile "$pidfile" --exec-root "$run/exec" --data-root "$data"
    --group root --log-level warn
  )
  # Another engine owns docker0: leave the default bridge to it (kind uses its own network).
  if ip link show docker0 >/dev/null 2>&1 && ! running; then
    if [[ -f /var/run/docker.pid ]] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
      args+=(--bridge none)
    fi
  fi
  if short_bounding_set; then
    local capfix="$repo/tools/runc-capfix/runc-capfix"
    chmod +x "$capfix"
    args+=(--add-runtime "capfix=$capfix" --default-runtime capfix)
    echo "docker-engine: capability bounding set is short (CapBnd $(awk '/^CapBnd:/ {print $2}' /proc/self/status)); containers run through $capfix"
  fi
  rm -f "$pidfile"
  echo "docker-engine: starting dockerd on $host (data $data, log $log)"
  # setsid: the engine outlives this script and its terminal.
  setsid dockerd "${args[@]}" >>"$log" 2>&1 </dev/null &
  local pid=$! t=0
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "docker-engine: dockerd exited; last lines of $log:" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    ((t++ < 120)) || { echo "docker-engine: dockerd did not answer within 60s (see $log)" >&2; exit 1; }
    sleep 0.5
  done
  if docker_cli version --format 'docker-engine: engine {{.Server.Version}}, client {{.Client.Version}}' 2>/dev/null; then
    :
  else
    echo "docker-engine: warning: the docker CLI ($(command -v docker || echo none)) cannot talk to the engine" >&2
  fi
  echo "DOCKER_HOST=$host"
}

stop() {
  need_root stop
  if ! running; then
    echo "docker-engine: not running"
    return
  fi
  local pid
  pid=$(cat "$pidfile")
  if answers; then
    # Every container on this engine is ours: remove them all (kind nodes included).
    local ids
    ids=$(curl -fsS --unix-socket "$sock" 'http://d/containers/json?all=1' | jq -r '.[].Id')
    for id in $ids; do
      curl -fsS -X DELETE --unix-socket "$sock" "http://d/containers/$id?force=1&v=1" >/dev/null ||
        echo "docker-engine: could not remove container $id" >&2
    done
    [[ -z $ids ]] || echo "docker-engine: removed $(wc -w <<<"$ids") container(s)"
  fi
  kill -TERM "$pid"
  local t=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((t++ == 60)); then echo "docker-engine: dockerd still running after 30s; sending KILL" >&2; kill -KILL "$pid" || true; fi
    ((t < 80)) || { echo "docker-engine: dockerd (pid $pid) did not exit" >&2; exit 1; }
    sleep 0.5
  done
  rm -f "$pidfile"
  echo "docker-engine: stopped"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  env) echo "DOCKER_HOST=$host" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
