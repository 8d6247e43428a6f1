#!/usr/bin/env bash
# Build tether's image from the repository's Dockerfile with podman, on a machine that
# cannot pull from any container registry:
#   1. the base image is a Debian root filesystem made with mmdebstrap from the mirror
#      apt uses here (python3 and python3-venv in it), imported with `podman import`;
#      kept once built, so later builds start at step 2;
#   2. `podman build --build-arg BASE_IMAGE=<that base>`, with pip inside the build
#      reaching the package index this machine's pip uses (see pip-context.py).
# Usage: deploy/podman/build-image.sh [TAG]    (default tether:<the chart's appVersion>)
# Prints the build time and the image's size. Needs root, podman, runc, mmdebstrap.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=deploy/podman
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/$here/containers.conf}"

app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' deploy/helm/tether/Chart.yaml)
tag="${1:-tether:$app_version}"
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
base="${TETHER_BASE_IMAGE:-localhost/tether-base:$codename}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

if podman image exists "$base"; then
    echo "base image $base: already built"
else
    # apt's own sources (deb822 or one-line), so the base comes from the same mirror.
    sources=/etc/apt/sources.list.d/debian.sources
    [ -f "$sources" ] || sources=/etc/apt/sources.list
    echo "base image $base: mmdebstrap $codename from $sources"
    mmdebstrap --quiet --variant=minbase \
        --include=python3,python3-venv,ca-certificates,netbase,tzdata \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --aptopt='Acquire::Retries "3"' \
        "$codename" "$work/rootfs.tar" "$sources"
    # An imported filesystem has no environment: give it the PATH every image has.
    podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$base" >/dev/null
    rm -f "$work/rootfs.tar"
    echo "base image $base: $(( $(date +%s) - started )) s"
fi

mapfile -t pip_mounts < <(python3 "$here/pip-context.py" "$work/pip.conf")
build_started=$(date +%s)
# docker format: the OCI format has no HEALTHCHECK
podman build --network host --pull=never --build-arg "BASE_IMAGE=$base" \
    --format docker "${pip_mounts[@]}" --tag "$tag" --file Dockerfile .
finished=$(date +%s)
size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "image $tag: built in $(( finished - build_started )) s ($(( finished - started )) s in all)," \
     "$(( size / 1000000 )) MB"
