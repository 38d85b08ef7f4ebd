#!/usr/bin/env bash
# Checks the protos against the images recorded in proto-baseline/:
#   api  (api/proto, the public API)       buf breaking, FILE rules
#   raft (internal/proto, log + snapshots) buf breaking, WIRE rules
# and that the recorded images are those of the protos as they are now, so
# every change is checked against the one before it.
#
#   scripts/check-proto-compat.sh            check (make test runs this)
#   scripts/check-proto-compat.sh --record   check, then record the images
#                                            (make proto-baseline)
# A deliberate break is recorded with ACCEPT_BREAKING=1 (say why in the
# commit): older logs, snapshots or clients will not read what follows.
set -euo pipefail
cd "$(dirname "$0")/.."

record=0
[ "${1:-}" = "--record" ] && record=1
dir=proto-baseline
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
for pair in api:api/proto raft:internal/proto; do
	name=${pair%%:*}
	module=${pair#*:}
	baseline=$dir/$name.txtpb
	if [ -f "$baseline" ] && [ "${ACCEPT_BREAKING:-0}" != 1 ]; then
		if ! buf breaking "$module" --against "$baseline"; then
			echo "$module: incompatible with the recorded $baseline (see above)."
			echo "  Keep the change compatible, or record it on purpose: ACCEPT_BREAKING=1 make proto-baseline"
			bad=1
			continue
		fi
	fi
	buf build "$module" --exclude-source-info -o "$tmp/$name.txtpb"
	if [ "$record" = 1 ]; then
		cp "$tmp/$name.txtpb" "$baseline"
		echo "$module: recorded $baseline"
	elif ! [ -f "$baseline" ] || ! cmp -s "$tmp/$name.txtpb" "$baseline"; then
		echo "$module: compatible, but $baseline is not the image of the protos as they are: run 'make proto-baseline' and commit it"
		bad=1
	fi
done
[ "$bad" = 0 ] || exit 1
echo "protos: compatible with the recorded baseline"
