#!/usr/bin/env bash
# Builds offline stand-ins for the images scenarios use (kind-configs/stand-in-images.txt), under
# the same names, into the Docker engine at DOCKER_HOST, and caches each as a `docker save` tar
# under ${CKSLAB_CACHE:-~/.cache/ckslab}/kind/stand-ins/. For tests without a registry only:
# users pull the real images.
#
#   scripts/build-stand-in-images.sh                     # build/load; print the image names
#   scripts/build-stand-in-images.sh --kind-load NAME    # also load them into kind cluster NAME
#
# A stand-in is FROM scratch + Debian's busybox-static and its applet links, with a long-lived
# default command: busybox: sh; nginx: httpd -f -p 80; postgres: httpd -f -p 5432; anything
# under registry.local/ (made-up images of the scenarios): sleep.
# Note: a pod using busybox:latest (imagePullPolicy Always by default) still tries to pull;
# set imagePullPolicy: IfNotPresent in tests, or the pull fails offline.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
self="$repo/scripts/build-stand-in-images.sh"
list="$repo/kind-configs/stand-in-images.txt"
cache=${CKSLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ckslab}
dir="$cache/kind/stand-ins"
kind=${KIND:-$cache/bin/v1.34.4/kind}
BUSYBOX=/bin/busybox
mkdir -p "$dir"

cluster=""
case ${1:-} in
  --kind-load) cluster=${2:?usage: $0 [--kind-load CLUSTER]} ;;
  "") ;;
  *) echo "usage: $0 [--kind-load CLUSTER]" >&2; exit 2 ;;
esac

if ! { [[ -x $BUSYBOX ]] && "$BUSYBOX" --list | grep -qx httpd; }; then
  echo "build-stand-in-images: installing busybox-static (apt-get)..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static; } >&2
fi
docker version --format '{{.Server.Version}}' >/dev/null || { echo "build-stand-in-images: no Docker engine at DOCKER_HOST" >&2; exit 2; }

mapfile -t names < <(grep -v '^\s*#' "$list" | sed '/^\s*$/d')
bbsum=$(sha256sum "$BUSYBOX" "$self" | sha256sum | cut -c1-16)
start=$SECONDS
built=0 loaded=0
for ref in "${names[@]}"; do
  repo_name=${ref%%:*}
  kind_of=${repo_name##*/}
  # Images of the scenarios' own made-up registry (registry.local/...): a process that stays up.
  [[ $repo_name != registry.local/* ]] || kind_of=sleeper
  case $kind_of in
    sleeper) cmd='CMD ["sleep", "2147483647"]' ;;
    busybox) cmd='CMD ["sh"]' ;;
    nginx) cmd='CMD ["httpd", "-f", "-v", "-p", "80", "-h", "/usr/share/nginx/html"]' ;;
    postgres) cmd='CMD ["httpd", "-f", "-v", "-p", "5432", "-h", "/var/lib/postgresql/data"]' ;;
    *) echo "build-stand-in-images: no stand-in kind for $ref (busybox, nginx, postgres, registry.local/...)" >&2; exit 1 ;;
  esac
  key=$(echo "$bbsum $ref $cmd" | sha256sum | cut -c1-16)
  tar_path="$dir/$(echo "$ref" | tr '/:' '__').tar"
  have=$(docker image inspect -f '{{index .Config.Labels "ckslab.inputs"}}' "$ref" 2>/dev/null || true)
  if [[ -f $tar_path && $(cat "$tar_path.inputs" 2>/dev/null) == "$key" ]]; then
    if [[ $have != "$key" ]]; then docker load -i "$tar_path" >/dev/null; loaded=$((loaded + 1)); fi
    continue
  fi
  d=$(mktemp -d)
  mkdir -p "$d"/{bin,etc,tmp,root,var/run,usr/share/nginx/html,var/lib/postgresql/data,home}
  chmod 1777 "$d/tmp"
  cp "$BUSYBOX" "$d/bin/busybox"
  for a in $("$BUSYBOX" --list); do [[ -e $d/bin/$a ]] || ln -s busybox "$d/bin/$a"; done
  # Debian's busybox 1.35 wget segfaults with -T (timeout); scenarios use `wget -T 3`, which the
  # real busybox 1.36 handles: run it under busybox timeout instead.
  rm -f "$d/bin/wget"
  cat >"$d/bin/wget" <<'WGET'
#!/bin/sh
# ckslab stand-in: busybox wget without -T (it crashes in busybox 1.35), under timeout.
t=""
n=$#
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  case $a in
    -T) t=$1; shift; n=$((n - 1)) ;;
    -T*) t=${a#-T} ;;
    --timeout=*) t=${a#--timeout=} ;;
    *) set -- "$@" "$a" ;;
  esac
done
if [ -n "$t" ]; then
  timeout "$t" busybox wget "$@"
  rc=$?
  [ "$rc" -lt 128 ] || echo "wget: download timed out" >&2
  [ "$rc" -lt 128 ] || exit 1
  exit "$rc"
fi
exec busybox wget "$@"
WGET
  chmod 755 "$d/bin/wget"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/home:/bin/false' \
    'nginx:x:101:101:nginx:/nonexistent:/bin/false' 'postgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh' >"$d/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' 'nginx:x:101:' 'postgres:x:999:' >"$d/etc/group"
  echo 'hosts: files dns' >"$d/etc/nsswitch.conf"
  echo '<html><body><h1>Welcome to nginx!</h1><p>ckslab offline stand-in (busybox httpd)</p></body></html>' >"$d/usr/share/nginx/html/index.html"
  echo 'ckslab offline stand-in for postgres (busybox httpd on 5432)' >"$d/var/lib/postgresql/data/index.html"
  tar -C "$d" --numeric-owner -c . | docker import --change "LABEL ckslab.inputs=$key" \
    --change 'LABEL ckslab.stand-in=true' --change 'ENV PATH=/bin' --change "$cmd" - "$ref" >/dev/null
  rm -rf "$d"
  docker save -o "$tar_path.tmp" "$ref"
  mv "$tar_path.tmp" "$tar_path"
  echo "$key" >"$tar_path.inputs"
  built=$((built + 1))
done
echo "stand-in images: ${#names[@]} (built $built, loaded $loaded) in $((SECONDS - start))s" >&2
if [[ -n $cluster ]]; then
  s=$SECONDS
  for ref in "${names[@]}"; do
    "$kind" load image-archive --name "$cluster" "$dir/$(echo "$ref" | tr '/:' '__').tar" >&2
  done
  echo "stand-in images: loaded into kind cluster $cluster in $((SECONDS - s))s" >&2
fi
printf '%s\n' "${names[@]}"
