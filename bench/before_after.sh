#!/usr/bin/env bash
# Every benchmark on two checkouts, one after the other, each in its own venv:
#   bench/before_after.sh OLD_CHECKOUT NEW_CHECKOUT OUT_DIR
# (issue 14: the layout rework must leave every figure within its noise). Each
# checkout needs `.venv` (the README's test command makes it). Figures go to
# OUT_DIR/<bench>.txt with the load average at each start.
set -u
OLD=$1; NEW=$2; OUT=$3
mkdir -p "$OUT"
run() { # name, args...
  local name=$1; shift
  for side in old new; do
    local dir=$OLD; [ "$side" = new ] && dir=$NEW
    echo "### $name $side $(date +%T) load=$(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/$name.txt"
    (cd "$dir" && timeout 2400 .venv/bin/python "$@") >> "$OUT/$name.txt" 2>&1
    echo "### rc=$?" >> "$OUT/$name.txt"
  done
}
run upload bench/upload.py --size 1G --runs 3
run pipeline bench/pipeline.py
run noop bench/noop.py
run latency bench/latency.py
run memory bench/memory.py
run quota bench/quota.py
run days bench/days.py --speed 1000 --files 6
run soak bench/soak.py --files 60 --duration 120
