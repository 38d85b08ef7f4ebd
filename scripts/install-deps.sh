#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, only those missing.
# Runs as root on Debian 12 (as `make test` and `make demo` do).
set -euo pipefail

# package → a file it installs, to tell whether it is there.
declare -A want=(
	[qemu-utils]=/usr/bin/qemu-img
	[curl]=/usr/bin/curl
	[libvirt-clients]=/usr/bin/virt-xml-validate
	[libxml2-utils]=/usr/bin/xmllint
)
missing=()
for pkg in "${!want[@]}"; do
	[ -e "${want[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${missing[*]}; run as root to install them with apt-get" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
