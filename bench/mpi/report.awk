# The verdict table of bench/mpi/compare.sh, apart so that its rules can be tested on literal numbers
# (tests/MpiPipeline.Tests/Benchmarks/MpiReportTests.cs).
# Input lines: "MPI.LANG.ROUND.OP op size min_us median_us" (LANG: c, cs = C#, cc = C again, the A/A control).
# Variables: flavors, ops (space-separated, the order of the report), noise_cap (the A/A band's cap, e.g. 1.10),
# small_cap (the C#/C cap at 8 B, e.g. 1.25). Output: the Summary section, then one table per MPI and operation.
BEGIN {
    if (noise_cap == "" || small_cap == "") { print "report.awk: set noise_cap and small_cap" > "/dev/stderr"; exit 2 }
}
function sortnum(v, n,   i, j, x) {
    for (i = 2; i <= n; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
}
function median(list,   n, v) {
    n = split(list, v, " "); sortnum(v, n)
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function smallest(list,   n, v) { n = split(list, v, " "); sortnum(v, n); return v[1] + 0 }
function label(b) {
    if (b >= 1048576 && b % 1048576 == 0) return (b / 1048576) " MiB"
    if (b >= 1024 && b % 1024 == 0) return (b / 1024) " KiB"
    return b " B"
}
function judge(size, ratio, diff) {
    if (size >= 65536) return ratio <= 1.03
    return diff <= 1.0 && ratio <= small_cap
}
function band(aa,   b) { b = aa >= 1 ? aa : (aa > 0 ? 1 / aa : 1); return b < noise_cap ? b : noise_cap }
{
    split($1, parts, "."); mpi = parts[1]; lang = parts[2]; op = $2; size = $3 + 0
    key = mpi SUBSEP op SUBSEP size
    medians[key, lang] = medians[key, lang] " " $5
    if (!((mpi, op, size) in seen)) { seen[mpi, op, size] = 1; sizes[mpi, op] = sizes[mpi, op] " " size }
}
END {
    nf = split(flavors, fl, " "); no = split(ops, opl, " ")
    for (f = 1; f <= nf; f++) for (o = 1; o <= no; o++) {
        mpi = fl[f]; op = opl[o]
        ns = split(sizes[mpi, op], sl, " "); sortnum(sl, ns)
        body = body sprintf("\n## %s, %s\n\n", mpi, op)
        body = body "| size | C median us | C# median us | C#/C | C# - C us | goal | verdict | C#/C, best runs | C again / C |\n"
        body = body "|---:|---:|---:|---:|---:|---|---|---:|---:|\n"
        met = 0; noise = 0; goals = 0; bestmet = 0; missed = ""
        for (i = 1; i <= ns; i++) {
            size = sl[i] + 0; key = mpi SUBSEP op SUBSEP size
            if (!((key, "c") in medians) || !((key, "cs") in medians)) continue
            c = median(medians[key, "c"]); cs = median(medians[key, "cs"])
            cb = smallest(medians[key, "c"]); csb = smallest(medians[key, "cs"])
            ratio = c > 0 ? cs / c : 0; diff = cs - c; bratio = cb > 0 ? csb / cb : 0
            aa = ((key, "cc") in medians) && c > 0 ? median(medians[key, "cc"]) / c : 0
            goal = "-"; verdict = ""
            if (size >= 65536 || size == 8) {
                goal = size == 8 ? "<= +1 us, <= " small_cap "x" : "<= 1.03x"; goals++
                if (judge(size, ratio, diff)) { met++; verdict = "met" }
                else if (size >= 65536 && aa > 0 && ratio <= band(aa)) { noise++; verdict = "within noise" }
                else { verdict = "**missed**"; missed = missed ", " label(size) }
                if (judge(size, bratio, csb - cb)) bestmet++
            }
            body = body sprintf("| %s | %.3f | %.3f | %.3f | %+.3f | %s | %s | %.3f | %s |\n", label(size), c, cs, ratio, diff, goal, verdict, bratio, aa > 0 ? sprintf("%.3f", aa) : "-")
        }
        summary = summary sprintf("| %s | %s | %d of %d | %d | %s | %d of %d |\n", mpi, op, met, goals, noise, missed == "" ? "-" : substr(missed, 3), bestmet, goals)
    }
    print "## Summary\n"
    print "| MPI | op | goals met (medians) | within noise (A/A) | missed at | goals met (best runs) |"
    print "|---|---|---|---|---|---|"
    printf "%s", summary
    printf "%s", body
}
