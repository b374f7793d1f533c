#!/bin/sh
# station.sh BUNDLE.sfib OEM.pub IMAGE.sfi: the command line a production station runs for each
# chip. The bundle's signature (by the OEM key given) and every file in it are checked before
# any Lua runs; then its recipe installs IMAGE with a licence from the station's HSM.
#
# Set up once per station (the values below are examples):
#   SFI_PROBE    probe URI: stlink (the only ST-LINK), stlink:SERIAL, or sim:stm32h753 for a
#                dry run on the simulator
#   SFI_HSM      PKCS#11 URI of the licence token; its PIN comes from a file or an environment
#                variable named in the URI (pin-source=file:PATH or env:VAR), never from argv
#   SFI_STATION  the station's name in the licence journal (default: the host name)
#   SFI_JOURNAL  the journal database (default: sfirun's state directory)
# Exit code: 0 installed; 1 the install failed (the last line says which step and why), or the
# bundle is not signed by OEM.pub (AUTH: refused before anything runs); 2 bad input (a
# malformed bundle or image, a wrong parameter).
set -eu
if [ $# -ne 3 ]; then
    echo "usage: station.sh BUNDLE.sfib OEM.pub IMAGE.sfi" >&2
    exit 2
fi
SFIRUN=${SFIRUN:-sfirun}
: "${SFI_PROBE:?set SFI_PROBE to the probe URI (stlink:SERIAL)}"
: "${SFI_HSM:?set SFI_HSM to the PKCS#11 URI of the licence token}"
STATION=${SFI_STATION:-$(hostname)}

set -- "$1" --trust "$2" --set image="$3" --probe "$SFI_PROBE" --hsm "$SFI_HSM" \
    --set station="$STATION"
if [ -n "${SFI_JOURNAL:-}" ]; then set -- "$@" --journal "$SFI_JOURNAL"; fi
exec "$SFIRUN" "$@"
