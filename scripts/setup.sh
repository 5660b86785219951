#!/usr/bin/env bash
# setup.sh -- installs what treerpo needs on Debian 12 (as root) and makes OpenBLAS the BLAS
# that libtorch uses. Does nothing when everything is already in place. Clusters without root
# do not need it: see README, "Building against your own libraries".
set -euo pipefail

packages=(
  g++ cmake make pkg-config ccache git
  libtorch-dev libgloo-dev libcli11-dev libhdf5-dev libzstd-dev nlohmann-json3-dev
  libgtest-dev libbenchmark-dev libopenblas0-pthread libpng-dev
  hdf5-tools python3 python3-h5py python3-numpy python3-jsonschema python3-torch
  slurm-wlm munge
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: missing Debian packages: ${missing[*]}" >&2
    echo "setup.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libtorch links libblas.so.3 / liblapack.so.3 through the alternatives system; the reference
# BLAS makes its matrix products ~30x slower than OpenBLAS (PERFORMANCE.md).
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  want=/usr/lib/$arch/openblas-pthread/$lib
  current=$(update-alternatives --query "$lib-$arch" 2>/dev/null | sed -n 's/^Value: //p')
  if [ -e "$want" ] && [ "$current" != "$want" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup.sh: $lib points to $current; run as root to select OpenBLAS" >&2
      exit 1
    fi
    update-alternatives --set "$lib-$arch" "$want" >/dev/null
    echo "setup.sh: $lib -> OpenBLAS" >&2
  fi
done
[ ${#missing[@]} -gt 0 ] || echo "setup.sh: all dependencies present" >&2
