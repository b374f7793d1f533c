#!/bin/sh
# packaging/check-deb.sh DEB: checks a built sfirun package as a station's administrator would
# (run by `./build.sh package` and by the ctest test package/deb):
#  - control fields; Depends names the package of every library the binary needs (readelf -d,
#    dpkg -S) and nothing else; Suggests softhsm2, openocd;
#  - contents: exactly what `cmake --install` of the same build installs, all under /usr,
#    owned by root; a stripped, hardened binary holding no path of the source tree;
#  - lintian: no error;
#  - the extracted program run with the source tree hidden (packaging/check-installed.sh, in a
#    private mount namespace with a tmpfs over the source directory; needs root and unshare).
# Prints "ok - ..." / "FAIL - ..." lines and "N passed, N failed"; exit 1 when a check failed.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: check-deb.sh DEB" >&2; exit 2; }
DEB=$(realpath "$1")
B=$(dirname "$DEB")
for tool in dpkg-deb readelf strings file lintian; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (./build.sh deps)"; exit 77; }
done

pass=0 fail=0 skipped=""
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
    d=$1; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
T=$(mktemp -d /tmp/sfirun-deb.XXXXXX)
trap 'rm -rf "$T"' EXIT
case "$T" in "$SRC"/*) echo "the work directory must be outside the source tree" >&2; exit 1 ;; esac
R=$T/root
dpkg-deb -x "$DEB" "$R"
field() { dpkg-deb -f "$DEB" "$1"; }

# ---- control fields ---------------------------------------------------------------------------
V=$(sed -n 's/^project(sfirun VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
ARCH=$(dpkg --print-architecture)
check "Package is sfirun" [ "$(field Package)" = sfirun ]
check "Version is project(VERSION) $V" [ "$(field Version)" = "$V" ]
check "Architecture is $ARCH" [ "$(field Architecture)" = "$ARCH" ]
check "file name is sfirun_${V}_$ARCH.deb" [ "$(basename "$DEB")" = "sfirun_${V}_$ARCH.deb" ]
check "Maintainer is a name and an address" \
    sh -c 'printf "%s\n" "$1" | grep -Eq "^[^<]+ <[^@ ]+@[^> ]+>$"' sh "$(field Maintainer)"
check "Section and Priority are set" [ -n "$(field Section)" -a "$(field Priority)" = optional ]
check "Description has a synopsis and an extended part" \
    [ "$(field Description | wc -l)" -gt 2 ]
check "Suggests softhsm2 and openocd" \
    sh -c 'printf ", %s,\n" "$1" | grep -q ", softhsm2," && printf ", %s,\n" "$1" | grep -q ", openocd,"' \
    sh "$(field Suggests)"

# Depends: the packages that own the libraries the binary needs, no more, no fewer
depends=$(field Depends | tr ',' '\n' | sed 's/(.*//; s/^ *//; s/ *$//' | sort -u)
needed=$(readelf -d "$R/usr/bin/sfirun" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
owners=""
for lib in $needed; do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|64bit/ { print $NF; exit }')
    [ -n "$path" ] || path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
    pkg=""
    for p in "$path" "$(realpath "$path" 2>/dev/null)" "/usr$path"; do
        pkg=$(dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1) && [ -n "$pkg" ] && break
    done
    if [ -z "$pkg" ]; then bad "$lib: no Debian package owns it ($path)"; continue; fi
    owners="$owners $pkg"
    check "Depends names $pkg (for $lib)" sh -c 'printf "%s\n" "$1" | grep -qx "$2"' sh "$depends" "$pkg"
done
for d in $depends; do
    check "Depends on $d because the binary needs a library of it" \
        sh -c 'printf "%s\n" $1 | grep -qx "$2"' sh "$owners" "$d"
done

# ---- contents -----------------------------------------------------------------------------------
listing=$(dpkg-deb -c "$DEB")
check "every entry is owned by root/root" \
    sh -c '! printf "%s\n" "$1" | awk "{ print \$2 }" | grep -vqx root/root' sh "$listing"
check "every entry is under /usr (none in /usr/local)" \
    sh -c '! printf "%s\n" "$1" | awk "{ print \$6 }" | grep -Ev "^\./$|^\./usr/" | grep -q . &&
           ! printf "%s\n" "$1" | grep -q "\./usr/local"' sh "$listing"
for f in usr/bin/sfirun usr/share/sfirun/scripts/sfi/flow.lua usr/share/sfirun/scripts/sfi/cli/main.lua \
         usr/share/sfirun/vendor/st/stm32h74x_75x.lua usr/share/sfirun/vendor/sim/ca-pub.pem \
         usr/share/sfirun/recipes/h753.lua usr/lib/udev/rules.d/70-sfirun-stlink.rules \
         usr/share/man/man1/sfirun.1.gz usr/share/bash-completion/completions/sfirun \
         usr/share/doc/sfirun/copyright usr/share/doc/sfirun/changelog.gz \
         usr/share/doc/sfirun/README.Debian usr/share/doc/sfirun/docs/cli.md \
         usr/share/doc/sfirun/examples/simulated-install.sh usr/share/doc/sfirun/examples/station.sh; do
    check "contains /$f" [ -f "$R/$f" ]
done
check "the udev rules are the ones in udev/" cmp -s "$R/usr/lib/udev/rules.d/70-sfirun-stlink.rules" \
    "$SRC/udev/70-sfirun-stlink.rules"
# exactly what `cmake --install` of the same build installs
if DESTDIR="$T/inst" cmake --install "$B" >/dev/null 2>&1; then
    (cd "$T/inst" && find . ! -type d | sort) > "$T/installed"
    printf "%s\n" "$listing" | awk '$1 !~ /^d/ { print $6 }' | sort > "$T/packaged"
    check "the package holds exactly what cmake --install installs" cmp -s "$T/installed" "$T/packaged"
    diff "$T/installed" "$T/packaged" | sed -n '2,12p'
else
    bad "cmake --install $B failed"
fi
check "changelog.gz's first entry is version $V" \
    sh -c 'gzip -dc "$1" | head -n 1 | grep -q "^sfirun ($2)"' sh "$R/usr/share/doc/sfirun/changelog.gz" "$V"
check "copyright is machine-readable (format 1.0) and names the licence" \
    sh -c 'head -n 1 "$1" | grep -q "^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/" &&
           grep -q "^License: " "$1"' sh "$R/usr/share/doc/sfirun/copyright"
dpkg-deb --ctrl-tarfile "$DEB" | tar -tvf - > "$T/control"
check "postinst is an executable shell script that reloads udev rules" \
    sh -c 'grep -q "^-rwxr-xr-x.*postinst$" "$1" && dpkg-deb -e "$2" "$3/ctl" && sh -n "$3/ctl/postinst" &&
           grep -q "udevadm control --reload-rules" "$3/ctl/postinst"' sh "$T/control" "$DEB" "$T"

# ---- the binary -------------------------------------------------------------------------------
info=$(file -b "$R/usr/bin/sfirun")
check "the binary is stripped ($info)" sh -c 'printf "%s\n" "$1" | grep -q ", stripped"' sh "$info"
check "the binary is a PIE" sh -c 'printf "%s\n" "$1" | grep -q "pie executable"' sh "$info"
dyn=$(readelf -d "$R/usr/bin/sfirun")
check "the binary is linked with full RELRO (BIND_NOW)" sh -c 'printf "%s\n" "$1" | grep -q "BIND_NOW\|Flags:.*NOW"' sh "$dyn"
check "the binary uses fortified functions (_FORTIFY_SOURCE)" \
    sh -c 'readelf --dyn-syms -W "$1" | grep -v __stack_chk | grep -q "__[a-z]*_chk@"' sh "$R/usr/bin/sfirun"
check "the binary holds no path of the source tree ($SRC)" \
    sh -c '! strings -a "$1" | grep -qF "$2"' sh "$R/usr/bin/sfirun" "$SRC"

# ---- lintian ----------------------------------------------------------------------------------
lintian --fail-on error --tag-display-limit 0 "$DEB" > "$T/lintian" 2>&1
lrc=$?
grep -v "root privileges" "$T/lintian" | sed 's/^/   lintian: /'
check "lintian reports no error" [ "$lrc" -eq 0 ]

# ---- the program, run with the source tree hidden --------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
    skipped="running the extracted program with the source tree hidden needs root (unshare -m)"
elif ! command -v unshare >/dev/null || ! unshare -m true 2>/dev/null; then
    skipped="running the extracted program with the source tree hidden needs 'unshare -m', which this system refuses"
else
    cp "$SRC/packaging/check-installed.sh" "$T/check-installed.sh"
    unshare -m sh -c 'mount -t tmpfs -o size=1m,mode=0755 sfirun-source-hidden "$1" && cd "$2" &&
                      exec sh "$2/check-installed.sh" "$2" "$1" "$3"' sh "$SRC" "$T" "$V" > "$T/run.log" 2>&1
    cat "$T/run.log"
    pass=$((pass + $(grep -c '^ok - ' "$T/run.log")))
    fail=$((fail + $(grep -c '^FAIL - ' "$T/run.log")))
    grep -q '^done$' "$T/run.log" || bad "check-installed.sh stopped before its end"
fi

if [ -n "$skipped" ]; then echo "SKIP: $skipped"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] || exit 1
[ -z "$skipped" ] || exit 77
exit 0
