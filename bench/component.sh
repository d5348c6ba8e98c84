# bench/component.sh - what the component benches (bench/decode.sh, bench/part.sh) share: their
# Release build, gen's bench traffic written to files (the traffic and models of bench/run.sh),
# and a program's instruction count under cachegrind. Sourced, not run; sets BUILD and W (a
# temporary directory, removed on exit).
#   component_setup BUILD TARGET    builds driftwatch and TARGET in BUILD, W := a new temp dir
#   component_traffic N SUFFIX      W/pSUFFIX.jsonl and W/lSUFFIX.jsonl: N predictions, N labels
#   component_ir PROGRAM ARGS...    the instructions PROGRAM ARGS executes (cachegrind)

component_setup() {
    BUILD=$1
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE="${BENCH_BUILD_TYPE:-Release}" >/dev/null
    cmake --build "$BUILD" --target driftwatch "$2" -j"$(nproc)" >/dev/null
    W=$(mktemp -d /tmp/driftwatch-component.XXXXXX)
    trap 'rm -rf "$W"' EXIT
    {
        printf "group: bench\nkafka: {bootstrap.servers: \"127.0.0.1:9\"}\n"
        "$BUILD/driftwatch" gen --print-models --numeric 10 --categorical 5
    } >"$W/dw.yaml"
}

component_traffic() {
    "$BUILD/driftwatch" gen -q --numeric 10 --categorical 5 --versions 1.0.0,1.1.0 \
        --label-delay 30 --count "$1" --eps 1000 --predictions-out "$W/p$2.jsonl" \
        --labels-out "$W/l$2.jsonl"
}

component_ir() {
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$W/cg.out" "$@" \
        >/dev/null 2>&1
    awk '/^summary:/ {print $2}' "$W/cg.out"
}
