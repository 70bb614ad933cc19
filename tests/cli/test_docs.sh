# docs/CLI.md is what the program's help says.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
fresh=$(mktemp)
"$top/tools/gen-cli-doc.sh" "$CMDB" >"$fresh"
if diff -u "$top/docs/CLI.md" "$fresh" >&2; then ok; else bad "docs/CLI.md is stale: run tools/gen-cli-doc.sh build/release/bin/cmdb > docs/CLI.md"; fi
rm -f "$fresh"
# every command in the table has a help text that starts with its synopsis
while read -r cmd; do
  # shellcheck disable=SC2086
  expect 0 help $cmd; expect_out "^Usage: cmdb $cmd"
done < <("$CMDB" help --commands)
finish
