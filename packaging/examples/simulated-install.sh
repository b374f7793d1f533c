#!/bin/sh
# simulated-install.sh [WORKDIR]: a whole SFI install with the installed sfirun, no hardware:
#  1. a demo firmware, a fresh firmware key and nonce, an option-byte CSV;
#  2. the encrypted SFI image (sfirun image build);
#  3. a SoftHSM2 token (package softhsm2) provisioned as the OEM would: key, nonce, firmware ID,
#     10 licences, the simulated chips' CA;
#  4. the h753 recipe on a blank simulated STM32H753, the licence taken from the token;
#  5. the licence accounting: the token's counter (9 left) and the station's journal.
# Everything, keys included, is written under WORKDIR (default ./sfirun-sim): a trial, not a
# production set-up. Set SFIRUN to use another sfirun than the one on PATH, and SFIRUN_DATA for
# a data directory (recipes/, vendor/) other than the installed one (a source tree, for example).
set -eu
SFIRUN=${SFIRUN:-sfirun}
W=${1:-sfirun-sim}
SOFTHSM=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

# the installed data directory: ../share/sfirun next to the program
bin=$(command -v "$SFIRUN") || { echo "$SFIRUN: not found" >&2; exit 1; }
DATA=${SFIRUN_DATA:-$(cd "$(dirname "$bin")/../share/sfirun" && pwd)}
[ -f "$SOFTHSM" ] || { echo "SoftHSM2 is not installed (apt-get install softhsm2)" >&2; exit 1; }
if [ -e "$W" ]; then echo "$W exists: give another work directory" >&2; exit 1; fi
mkdir -p "$W/tokens"
W=$(cd "$W" && pwd)
umask 077

echo "== 1. demo firmware (180 KiB), fresh key and nonce"
openssl rand -out "$W/firmware.bin" 184320
openssl rand -out "$W/key.bin" 16
openssl rand -out "$W/nonce.bin" 12
# RDP stays at level 0 so the flash can be read back and compared; production uses 0xBB.
cat > "$W/ob.csv" <<CSV
FOPTSR_PRG,0x1BFEAAF0
FPRAR_PRG_A,0x000000FF
FPRAR_PRG_B,0x000000FF
FSCAR_PRG_A,0x000000FF
FSCAR_PRG_B,0x000000FF
FWPSN_PRG_A,0x000000FF
FWPSN_PRG_B,0x000000FF
FBOOT7_PRG,0x1FF00800
RESERVED,0x10000810
CSV

echo "== 2. encrypted SFI image"
"$SFIRUN" image build --devid 0x450 --firmware "$W/firmware.bin" 0x08000000 \
    --key "$W/key.bin" --nonce "$W/nonce.bin" --ob "$W/ob.csv" --ramsize 0x1E000 \
    --token 0x081FF000 --hash 0 --protocol 2 -o "$W/app.sfi"
"$SFIRUN" image info "$W/app.sfi" | tail -n 4

echo "== 3. SoftHSM2 token 'sfi-sim': firmware key, nonce, 10 licences, simulator chip CA"
SOFTHSM2_CONF="$W/softhsm2.conf"
export SOFTHSM2_CONF
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" \
    > "$SOFTHSM2_CONF"
openssl rand -hex 8 > "$W/pin"
softhsm2-util --init-token --free --label sfi-sim --so-pin "$(openssl rand -hex 8)" \
    --pin "$(cat "$W/pin")" >/dev/null
HSM="pkcs11:token=sfi-sim?module-path=$SOFTHSM&pin-source=file:$W/pin"
"$SFIRUN" hsm provision --hsm "$HSM" --key "$W/key.bin" --nonce "$W/nonce.bin" \
    --fwid SIM-FW-1.0 --max 10 --ca "$DATA/vendor/sim/ca-pub.pem"

echo "== 4. the h753 recipe on a blank simulated STM32H753"
"$SFIRUN" "$DATA/recipes/h753.lua" --set image="$W/app.sfi" --hsm "$HSM" \
    --probe "sim:stm32h753?state=$W/chip.state" --set verify="$W/firmware.bin" \
    --set station=sim-station --journal "$W/journal.sqlite"

echo "== 5. licence accounting"
"$SFIRUN" hsm info --hsm "$HSM"
"$SFIRUN" journal --journal "$W/journal.sqlite"
