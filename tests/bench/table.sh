#!/bin/sh
# table.sh LOG: the FIGURE lines of the benches' output (tests/bench/figure.h)
# as the Markdown table README.md shows.
printf '| what | measured | target | vs. baseline |\n|---|---|---|---|\n'
grep '^FIGURE	' "$1" | awk -F '\t' '{ printf "| %s | %s | %s | %s |\n", $2, $3, $4, ($5 == "" ? "" : $5) }'
