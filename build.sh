#!/bin/sh
# build.sh: the project's one set-up script.
#   ./build.sh demo   install dependencies, build, run the demo install on the simulated STM32H753
#   ./build.sh test   install dependencies, build, run every test (normal and ASan/UBSan builds)
#   ./build.sh package  install dependencies, build build/package/sfirun_VERSION_ARCH.deb, check it
#   ./build.sh deps | build | bench
# Dependencies are Debian 12 packages: installed with apt-get when run as root, otherwise the
# exact apt-get line is printed and the script stops.
set -eu
cd "$(dirname "$0")"

PKGS="build-essential cmake pkg-config git clang libclang-rt-14-dev
 liblua5.4-dev lua5.4 libusb-1.0-0-dev libssl-dev openssl libp11-dev libp11-kit-dev
 libarchive-dev libsqlite3-dev sqlite3 libcmocka-dev softhsm2 opensc openocd
 cppcheck clang-tidy lua-check gdb-multiarch libpcap-dev tcpdump tshark
 dpkg-dev file lintian groff-base man-db
 libpq-dev postgresql"

deps() {
    missing=""
    for p in $PKGS; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $p"
        fi
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        echo "== installing Debian packages:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing
    else
        echo "sfirun needs these Debian packages. Run as root:" >&2
        echo "  apt-get install -y$missing" >&2
        exit 1
    fi
}

build() { # build PRESET
    cmake --preset "$1" >/dev/null
    cmake --build --preset "$1"
}

case "${1:-}" in
deps)
    deps ;;
build)
    deps; build dev ;;
demo)
    deps; build dev
    exec sh demo/run.sh build/dev/sfirun ;;
test)
    deps
    t0=$(date +%s); t=$t0
    stage() { # print the time the previous stage took, then the next stage's title
        now=$(date +%s)
        [ "$now" -gt "$t" ] && echo "   ($((now - t)) s)"
        t=$now
        [ -n "${1:-}" ] && echo "== $1"
        return 0
    }
    stage "build: dev (warnings are errors)"
    build dev
    stage "tests: dev"
    ctest --preset dev
    stage "build: asan (AddressSanitizer + UndefinedBehaviorSanitizer)"
    build asan
    stage "tests: asan"
    ctest --preset asan
    if [ -d tests/fuzz ] && ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
        stage "build: fuzz (libFuzzer, bounded time per target)"
        build fuzz
        stage "tests: fuzz (SFI_FUZZ_SECONDS=${SFI_FUZZ_SECONDS:-20} per target)"
        ctest --preset fuzz
    fi
    if [ -x tests/static/run ]; then
        stage "static analysis"
        tests/static/run
    fi
    stage
    echo "   total $(( $(date +%s) - t0 )) s"
    echo "== all test stages passed" ;;
bench)
    deps; build release
    exec bench/run build/release ;;
package)
    deps
    echo "== build: package (packaging/build-deb.sh)"
    packaging/build-deb.sh build/package
    echo "== checks (packaging/check-deb.sh)"
    packaging/check-deb.sh build/package/sfirun_*.deb
    ls build/package/sfirun_*.deb ;;
*)
    echo "usage: ./build.sh demo|test|package|deps|build|bench" >&2
    exit 2 ;;
esac
