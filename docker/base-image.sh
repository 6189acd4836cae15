#!/usr/bin/env bash
# Print the name of a base image for docker/Dockerfile that the engine has, making one when needed.
#
#   BASE_IMAGE=$(docker/base-image.sh)
#
# 1. The official slim image of the project's Python (python:3.11-slim-bookworm, or $BASE_IMAGE)
#    when the engine has it or can pull it.
# 2. Otherwise (no image registry reachable: locked-down machines and CIs) an equivalent base built
#    from Debian's packages: mmdebstrap minbase bookworm + python3 (3.11) + venv, then
#    `docker import`, tagged tracking-sync-base:python3.11-bookworm. The root file system tar is
#    cached in $TRACKING_SYNC_CACHE (default ~/.cache/tracking-sync), so a new engine imports it in
#    seconds instead of rebuilding it (~1.5 min).
#    HTTPS from such machines often leaves through a proxy with its own certificate authority: the
#    host's CA bundle is copied into that base and named by PIP_CERT, so pip inside a build trusts
#    what the host trusts. The official base has neither: elsewhere the default CAs apply.
# Progress goes to stderr; stdout is the image name alone.
set -euo pipefail

OFFICIAL=${BASE_IMAGE:-python:3.11-slim-bookworm}
LOCAL=tracking-sync-base:python3.11-bookworm
CACHE=${TRACKING_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tracking-sync}
ROOTFS_TAR=$CACHE/debian-bookworm-python3.11-rootfs.tar
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
HOST_CA=/etc/ssl/certs/ca-certificates.crt

say() { echo "base-image: $*" >&2; }

if docker image inspect "$OFFICIAL" >/dev/null 2>&1; then echo "$OFFICIAL"; exit 0; fi
if docker image inspect "$LOCAL" >/dev/null 2>&1; then echo "$LOCAL"; exit 0; fi
if timeout 60 docker pull -q "$OFFICIAL" >/dev/null 2>&1; then echo "$OFFICIAL"; exit 0; fi
say "cannot pull $OFFICIAL; building an equivalent base from Debian's packages"

if [ ! -s "$ROOTFS_TAR" ]; then
  command -v mmdebstrap >/dev/null || {
    if [ "$(id -u)" = 0 ]; then
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap; } >/dev/null 2>&1 \
        || { say "apt-get install mmdebstrap failed"; exit 1; }
    else
      say "mmdebstrap is missing: sudo apt-get install -y mmdebstrap"; exit 1
    fi
  }
  mkdir -p "$CACHE"
  hooks=()
  if [ -s "$HOST_CA" ]; then
    hooks+=(--customize-hook="cp $HOST_CA \"\$1/etc/ssl/host-ca-bundle.crt\"")
  fi
  started=$SECONDS
  # The same packages python:3.11-slim-bookworm starts from (ca-certificates, netbase, tzdata),
  # plus Debian's Python 3.11 with venv and pip's wheel for ensurepip.
  mmdebstrap --quiet --variant=minbase --format=tar \
    --include=python3,python3-venv,ca-certificates,netbase,tzdata \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "${hooks[@]}" \
    bookworm "$ROOTFS_TAR.tmp" \
    "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
    "deb $SECURITY_MIRROR bookworm-security main" >&2
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  say "root file system built in $((SECONDS - started)) s: $ROOTFS_TAR"
fi

changes=(--change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]')
if tar -tf "$ROOTFS_TAR" ./etc/ssl/host-ca-bundle.crt >/dev/null 2>&1; then
  changes+=(--change 'ENV PIP_CERT=/etc/ssl/host-ca-bundle.crt')
fi
docker import "${changes[@]}" "$ROOTFS_TAR" "$LOCAL" >/dev/null
say "imported $LOCAL"
echo "$LOCAL"
