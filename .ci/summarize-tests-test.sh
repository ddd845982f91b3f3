#!/usr/bin/env bash
# Tests of .ci/summarize-tests, a suite of `make test`: each case fabricates a results folder (TRX files shaped like
# those `dotnet test` writes with NUnit's adapter: a normal run, a test host killed by Environment.FailFast, one
# killed by --blame-hang-timeout; suites' .counts files), runs the summarizer and compares its closing lines and exit
# status with the expected ones. Writes "N passed, N failed" to RESULTS_DIR/summarize-tests-test.counts.
#
#   .ci/summarize-tests-test.sh RESULTS_DIR
set -uo pipefail
summarize=$(cd "$(dirname "$0")" && pwd)/summarize-tests
results=${1:?usage: .ci/summarize-tests-test.sh RESULTS_DIR}
mkdir -p "$results"
counts=$results/summarize-tests-test.counts
work=$(mktemp -d /tmp/summarize-tests-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0; failed=0

# trx FILE DISCOVERED PASSED FAILED ABORT_TEXT [OUTCOME:NAME ...]: a TRX as the TRX logger writes it (one result per
# OUTCOME:NAME, the Counters, NUnit's "discovered N of N" line, and a RunInfo of outcome Error when ABORT_TEXT is set).
trx() {
    local file=$1 discovered=$2 p=$3 f=$4 abort=$5 result; shift 5
    {
        echo '<?xml version="1.0" encoding="utf-8"?>'
        echo '<TestRun id="eb0c0c0c" name="@vm" xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">'
        echo '  <Results>'
        for result in "$@"; do
            echo "    <UnitTestResult executionId=\"1\" testId=\"2\" testName=\"${result#*:}\" computerName=\"vm\"" \
                 "duration=\"00:00:00.01\" outcome=\"${result%%:*}\" testListId=\"3\" relativeResultsDirectory=\"1\" />"
        done
        echo '  </Results>'
        echo "  <ResultSummary outcome=\"$([ "$f" = 0 ] && [ -z "$abort" ] && echo Completed || echo Failed)\">"
        echo "    <Counters total=\"$#\" executed=\"$((p + f))\" passed=\"$p\" failed=\"$f\" error=\"0\" timeout=\"0\"" \
             'aborted="0" inconclusive="0" passedButRunAborted="0" notRunnable="0" notExecuted="0" disconnected="0"' \
             'warning="0" completed="0" inProgress="0" pending="0" />'
        echo '    <Output>'
        echo '      <StdOut>NUnit Adapter 5.2.0.0: Test execution started'
        echo "   NUnit3TestExecutor discovered $discovered of $discovered NUnit test cases using Current Discovery mode, Non-Explicit run"
        echo '</StdOut>'
        echo '    </Output>'
        echo '    <RunInfos>'
        if [ -n "$abort" ]; then
            echo '      <RunInfo computerName="vm" outcome="Error" timestamp="2026-12-06T13:44:43.71+00:00">'
            echo "        <Text>$abort"
            echo '   at T.D_Crashes()</Text>'
            echo '      </RunInfo>'
        fi
        echo '      <RunInfo computerName="vm" outcome="Warning" timestamp="2026-12-06T13:44:43.79+00:00">'
        echo "        <Text>Data collector 'Blame' message: All tests finished running, Sequence file will not be generated.</Text>"
        echo '      </RunInfo>'
        echo '    </RunInfos>'
        echo '  </ResultSummary>'
        echo '</TestRun>'
    } > "$file"
}

# check NAME EXPECTED_EXIT EXPECTED_OUTPUT -- SUMMARIZE_ARGS...: runs the summarizer on $work/NAME (filled by the
# case) and compares its stdout and exit status.
check() {
    local name=$1 want_rc=$2 want=$3; shift 4
    local got rc
    got=$(bash "$summarize" "$work/$name" "$@" 2>/dev/null); rc=$?
    if [ "$got" = "$want" ] && [ "$rc" = "$want_rc" ]; then
        passed=$((passed + 1)); echo "summarize-tests: PASS $name"
    else
        failed=$((failed + 1)); echo "summarize-tests: FAIL $name (exit $rc, expected $want_rc)"
        diff <(echo "$want") <(echo "$got") | sed 's/^/    /'
    fi
    echo "$passed passed, $failed failed" > "$counts"
}
case_dir() { mkdir -p "$work/$1"; echo "$work/$1"; }

d=$(case_dir normal-run)
trx "$d/Unit.trx" 6 3 1 "" Passed:A_Passes Failed:F_Fails Passed:D Passed:E NotExecuted:B_Ignored \
    'NotExecuted:C_Inconclusive(&quot;a &amp; b&quot;)'
check normal-run 1 '2 skipped or not run: B_Ignored, C_Inconclusive("a & b")
3 passed, 1 failed' -- Unit:1

d=$(case_dir host-crashed)   # Environment.FailFast in a test: the TRX has no result at all
trx "$d/Unit.trx" 6 0 0 "The active test run was aborted. Reason: Test host process crashed : Process terminated."
trx "$d/Rank.trx" 2 2 0 "" Passed:R1 Passed:R2
check host-crashed 1 'failed: Unit: The active test run was aborted. Reason: Test host process crashed : Process terminated.
6 skipped or not run: Unit: 6 of 6 tests never ran
2 passed, 1 failed' -- Unit:1 Rank:0

d=$(case_dir host-hung)      # killed by --blame-hang-timeout: the results so far, 3 of 6 tests missing
trx "$d/Unit.trx" 6 1 0 "The active test run was aborted. Reason: Test host process crashed" \
    Passed:A_Passes NotExecuted:B_Ignored NotExecuted:C_Inconclusive
check host-hung 1 'failed: Unit: The active test run was aborted. Reason: Test host process crashed
5 skipped or not run: B_Ignored, C_Inconclusive, Unit: 3 of 6 tests never ran
1 passed, 1 failed' -- Unit:1

d=$(case_dir results-missing-without-abort)
trx "$d/Unit.trx" 4 3 0 "" Passed:A Passed:B Passed:C
check results-missing-without-abort 1 'failed: Unit: 1 of 4 discovered tests have no result
1 skipped or not run: Unit: 1 of 4 tests never ran
3 passed, 1 failed' -- Unit:0

d=$(case_dir no-trx)          # dotnet test died before writing its TRX
trx "$d/Unit.trx" 1 1 0 "" Passed:A
check no-trx 1 'failed: Rank: exited 137 and wrote no results (Rank.trx or Rank.counts)
0 skipped or not run
1 passed, 1 failed' -- Unit:0 Rank:137

d=$(case_dir non-zero-exit-but-no-failure)
trx "$d/Unit.trx" 1 1 0 "" Passed:A
check non-zero-exit-but-no-failure 1 'failed: Unit: exited 134 although its results record no failure
0 skipped or not run
1 passed, 1 failed' -- Unit:134

d=$(case_dir suites)          # a suite that ran (one failure, two skipped unnamed) and one that could not run
trx "$d/Unit.trx" 1 1 0 "" Passed:A
printf '2 passed, 1 failed, 2 skipped\n' > "$d/smoke.counts"
printf '0 passed, 0 failed, 7 skipped\nskipped: all 7 slurm smoke jobs (not root)\n' > "$d/slurm-smoke.counts"
check suites 1 '9 skipped or not run: all 7 slurm smoke jobs (not root), smoke: 2 tests
3 passed, 1 failed' -- Unit:0 smoke:1 slurm-smoke:0

d=$(case_dir suite-died)      # a suite whose counts file is not what the protocol says
printf 'Segmentation fault\n' > "$d/odd.counts"
trx "$d/Unit.trx" 1 1 0 "" Passed:A
check suite-died 1 "failed: odd: $d/odd.counts does not start with 'N passed, N failed'
0 skipped or not run
1 passed, 1 failed" -- Unit:0 odd:139

d=$(case_dir all-passed)
trx "$d/Unit.trx" 2 2 0 "" Passed:A Passed:B
printf '3 passed, 0 failed\n' > "$d/smoke.counts"
check all-passed 0 '0 skipped or not run
5 passed, 0 failed' -- Unit:0 smoke:0

d=$(case_dir nothing-ran)
check nothing-ran 1 '0 skipped or not run
0 passed, 1 failed' --

echo "summarize-tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
