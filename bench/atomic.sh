# Sourced by the bench scripts that write a results table: the table goes to a temporary file beside it (a unique
# name, hidden) and is moved over the real name only once complete, so a failed or interrupted run leaves the old
# table as it was, and no temporary file (the EXIT trap removes it). The same rule as the program's AtomicFile.

ATOMIC_TEMPS=()

# atomic_temp VAR OUT: sets VAR to a fresh temporary name beside OUT (creating OUT's folder), removed at exit.
atomic_temp() {
    local tmp
    mkdir -p "$(dirname "$2")"
    tmp=$(mktemp "$(dirname "$2")/.$(basename "$2").$$.XXXXXX.tmp")
    ATOMIC_TEMPS+=("$tmp")
    trap 'rm -f -- "${ATOMIC_TEMPS[@]}"' EXIT
    printf -v "$1" '%s' "$tmp"
}

# atomic_commit TMP OUT: flushes TMP to disk, renames it over OUT and flushes OUT's folder (GNU sync FILE fsyncs it).
atomic_commit() {
    sync -- "$1" 2>/dev/null || true
    mv -f -- "$1" "$2"
    sync -- "$(dirname "$2")" 2>/dev/null || true
}
