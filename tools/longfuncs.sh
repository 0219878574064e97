#!/bin/sh
# longfuncs.sh [MAX] [FILE...] - list C functions longer than MAX lines
# (default 80), longest first: "lines file:start name". Without files it
# reads every .c under src/ and tests/. Needs Universal Ctags (end: field).
max=${1:-80}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- $(find src tests -name '*.c' | sort)
ctags --c-kinds=f --fields=+ne --sort=no -o - "$@" |
awk -F'\t' -v max="$max" '{
	start = ""; end = ""
	for (i = 4; i <= NF; i++) {
		if ($i ~ /^line:/) start = substr($i, 6)
		if ($i ~ /^end:/) end = substr($i, 5)
	}
	if (start != "" && end != "" && end - start + 1 > max)
		printf "%5d %s:%s %s\n", end - start + 1, $2, start, $1
}' | sort -rn
