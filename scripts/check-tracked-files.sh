#!/usr/bin/env bash
# Fails when a tracked file is a build output: an executable binary (ELF,
# Mach-O, PE, or any file with the execute bit that is not a script), or a
# file larger than 1 MiB. Generated code and the OpenAPI documents are the
# only exceptions (they are checked by `make check-generated` instead).
set -euo pipefail
cd "$(dirname "$0")/.."

max=$((1 << 20))
exceptions='^(api/gen/|internal/gen/|api/openapi/)'
bad=0
while IFS= read -r -d '' f; do
	[ -f "$f" ] || continue # deleted in the work tree
	if [[ "$f" =~ $exceptions ]]; then
		continue
	fi
	magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
	case "$magic" in
	7f454c46 | cffaedfe | cefaedfe | feedface | feedfacf | 4d5a*)
		echo "tracked file $f is an executable binary (magic $magic): remove it and ignore it in .gitignore"
		bad=1
		continue
		;;
	esac
	if [ -x "$f" ] && [ "$(head -c 2 "$f")" != "#!" ]; then
		echo "tracked file $f is executable but not a script: remove it or clear its execute bit"
		bad=1
	fi
	size=$(stat -c %s "$f")
	if [ "$size" -gt "$max" ]; then
		echo "tracked file $f is $size bytes, over the 1 MiB limit for sources"
		bad=1
	fi
done < <(git ls-files -z)
if [ "$bad" -ne 0 ]; then
	exit 1
fi
echo "tracked files: no binaries, none over 1 MiB"
