#!/bin/sh
# packaging/build-deb.sh [BUILD_DIR]: builds sfirun's Debian package, BUILD_DIR/sfirun_VERSION_ARCH.deb
# (default build/package), with the `package` preset (prefix /usr, no source-tree fallback,
# warnings are errors) and Debian's hardening flags from dpkg-buildflags. What goes in is
# what `cmake --install` installs (cmake/package.cmake); Depends comes from dpkg-shlibdeps.
# Prints the path of the package.
set -eu
cd "$(dirname "$0")/.."
B=${1:-build/package}

# dpkg-buildflags maps the source directory away (-ffile-prefix-map) when run from it
export DEB_BUILD_MAINT_OPTIONS="hardening=+all"
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
LDFLAGS="$(dpkg-buildflags --get LDFLAGS)"

rm -f "$B"/sfirun_*.deb
cmake --preset package -B "$B" -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$LDFLAGS" >/dev/null
cmake --build "$B" --target sfirun sfirun_docs -j 2
(cd "$B" && cpack -G DEB >cpack.log 2>&1) || { cat "$B/cpack.log" >&2; exit 1; }
set -- "$B"/sfirun_*.deb
[ -f "$1" ] || { echo "build-deb.sh: cpack made no package (see $B/cpack.log)" >&2; exit 1; }
echo "$1"
