# man_pages.sh -- every long option in a tool's --help is documented in its man page and every
# documented option exists; the pages render without warnings.
source "$(dirname "$0")/lib.sh"
for tool in treerpo-inspect treerpo-merge treerpo-synth treerpo-model treerpo-shapes update evaluate tree-rollout score advantage; do
  page="$SRC/man/$tool.1"
  [ -s "$page" ] && pass || { fail "$page missing"; continue; }
  { "$tool" --help
    case "$tool" in
      treerpo-model) for sub in init info export probe; do "$tool" "$sub" --help; done ;;
      treerpo-shapes) for sub in prompts dataset explain select; do "$tool" "$sub" --help; done ;;
    esac
  } | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u >help.txt
  while read -r opt; do
    grep -qF -- "\\-\\-${opt#--}" "$page" && pass || fail "$tool: $opt is in --help but not in $page"
  done <help.txt
  # Options documented in the OPTIONS section (examples may quote other tools' options).
  sed -n '/^\.SH "\?OPTIONS/,/^\.SH/p' "$page" | grep -oE -- '\\-\\-[a-z][a-z0-9-]*' | sed 's/\\-\\-/--/' | sort -u >page.txt
  while read -r opt; do
    grep -qxF -- "$opt" help.txt && pass || fail "$tool: $opt is in $page but not in --help"
  done <page.txt
  grep -q '^\.SH "\?EXIT STATUS' "$page" && pass || fail "$page lacks EXIT STATUS"
done
for page in "$SRC"/man/*.[157]; do
  if command -v groff >/dev/null; then
    out=$(groff -man -Tutf8 -ww "$page" 2>&1 >/dev/null)
    [ -z "$out" ] && pass || fail "$page: groff warnings: $out"
  fi
done
finish
