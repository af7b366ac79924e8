#!/usr/bin/env bash
# The format check: every C++ source of the tree is as clang-format (.clang-format at the root)
# would write it. Prints the files that are not and exits 1; `--fix` rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$fmt" ]; then
    echo "format: clang-format-14 is not installed (deploy/setup.sh installs it)" >&2
    exit 1
fi
mapfile -t files < <(find adapters comparator config proxy tests -name '*.cpp' -o -name '*.hpp' |
                     grep -v '^tests/fuzz/corpus/' | sort)
if [ "${1:-}" = "--fix" ]; then
    "$fmt" -i --style=file "${files[@]}"
    exit 0
fi
bad=()
for f in "${files[@]}"; do
    "$fmt" --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ "${#bad[@]}" -gt 0 ]; then
    echo "format: ${#bad[@]} file(s) differ from .clang-format (bash tests/check_format.sh --fix):"
    printf '  %s\n' "${bad[@]}"
    exit 1
fi
echo "format: ${#files[@]} files as .clang-format writes them"
