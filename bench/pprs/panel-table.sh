#!/usr/bin/env bash
# t50/t90 of every curve in the given `mpipipe pprs --csv` files against ONE level for all of them (issue 19 item 3):
# f(0) - 50% / 90% of (f(0) - the least f of any curve). Every run starts from the same f(0) (delta = 0). A file
# whose name holds "seed2" marks its rows "seed 2". Prints a Markdown table: run, final f, best f, t50, t90.
#   bash bench/pprs/panel-table.sh bench/results/pprs/adversarial-delta200-eta*.csv
set -euo pipefail
awk -F, 'FNR == 1 { next }
    { key = $4 " (eta " $7 ", gamma " $6 ")" (FILENAME ~ /seed2/ ? " seed 2" : ""); if (!(key in seen)) { seen[key] = 1; order[++n] = key }
      if ($8 == 0 && f0 == "") f0 = $10; if (best == "" || $10 + 0 < best + 0) best = $10
      t[key, ++count[key]] = $9; v[key, count[key]] = $10; last[key] = $10; if (min[key] == "" || $10 + 0 < min[key] + 0) min[key] = $10 }
    END {
      l50 = f0 - 0.5 * (f0 - best); l90 = f0 - 0.9 * (f0 - best)
      printf "f(0) = %.4g, best f of the panel = %.4g: t50 level f <= %.4g, t90 level f <= %.4g (the same for every row)\n\n", f0, best, l50, l90
      print "| run | final f | best f | t50 | t90 |"; print "| --- | ---: | ---: | ---: | ---: |"
      for (i = 1; i <= n; i++) { k = order[i]; a = "never"; b = "never"
        for (j = 1; j <= count[k]; j++) { if (a == "never" && v[k, j] + 0 <= l50) a = t[k, j]; if (b == "never" && v[k, j] + 0 <= l90) b = t[k, j] }
        printf "| %s | %.4g | %.4g | %s | %s |\n", k, last[k], min[k], a, b } }' "$@"
