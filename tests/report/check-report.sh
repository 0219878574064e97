#!/bin/sh
# `make check-report`: the HTML report in a real browser (tests/report/
# check_report.lua says what is checked). Needs Debian's chromium: installed
# here when missing (as root, or with sudo). When it cannot be installed
# the check says so and is skipped: it never passes without a browser.
#
#   sh tests/report/check-report.sh BATLAB BUILD [SCREENSHOT.png]
set -eu
BATLAB=$1
BUILD=$2
SHOT=${3:-}

if ! command -v chromium >/dev/null 2>&1; then
    echo "check-report: chromium is missing; installing Debian's chromium"
    if ! sh tools/deps.sh --report; then
        echo "check-report: SKIPPED: chromium could not be installed, the report was NOT checked in a browser"
        exit 0
    fi
fi
if ! command -v chromium >/dev/null 2>&1; then
    echo "check-report: SKIPPED: no chromium after installing it, the report was NOT checked in a browser"
    exit 0
fi

OUT=$BUILD/check-report
rm -rf "$OUT"
mkdir -p "$OUT"
BATLAB=$BATLAB "$BATLAB" lua tests/report/check_report.lua "$BATLAB" "$BUILD/tools/pngbox" "$OUT" $SHOT
