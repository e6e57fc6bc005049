#!/bin/sh
# No function in src/ is longer than MAX lines (60): a longer one is split
# into named steps. Universal Ctags finds every function definition and
# where it ends. Lists the offenders and fails; passes silently.
#   check_function_length.sh SRC_DIR [MAX]
set -eu
src=$1
max=${2:-60}
command -v ctags >/dev/null || { echo "ctags (universal-ctags) is not installed" >&2; exit 2; }
ctags --version | grep -q "Universal Ctags" || { echo "ctags is not Universal Ctags" >&2; exit 2; }
files=$(find "$src" -name '*.cpp' -o -name '*.hpp' -o -name '*.c' -o -name '*.h' | sort)
[ -n "$files" ] || { echo "no sources under $src" >&2; exit 2; }
# shellcheck disable=SC2086
report=$(ctags -x --_xformat='%{end}	%n	%F	%N' --kinds-c++=f --kinds-c=f \
           --fields=+ne --language-force=c++ $files |
         awk -F '\t' -v max="$max" '
           $1 == "" { print "no end line for " $3 ":" $2 " " $4; bad = 1; next }
           { n = $1 - $2 + 1; count++
             if (n > max) { printf "%s:%s %s: %d lines\n", $3, $2, $4, n; bad = 1 } }
           END { if (count == 0) { print "no functions found"; bad = 1 }
                 exit bad }') || { echo "$report"; echo "functions longer than $max lines (or unreadable):" >&2; exit 1; }
echo "every function under $src is at most $max lines"
