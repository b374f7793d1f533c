#!/bin/sh
# demo/run.sh [SFIRUN]: the main job on the embedded default, end to end, from nothing:
#  1. a demo firmware, a fresh firmware key and nonce, an option-byte CSV;
#  2. the encrypted SFI image (sfirun image build, as ST's Trusted Package Creator would);
#  3. a throw-away SoftHSM2 token provisioned as the OEM would (key, nonce, firmware ID,
#     licence counter, trusted chip CA);
#  4. sfirun recipes/h753.lua on a blank simulated STM32H753, licence from the token;
#  5. the final option bytes and a check that the chip's flash equals the plaintext firmware.
# Everything is written under build/demo/ (keys included: a demo, not a production set-up).
set -eu
cd "$(dirname "$0")/.."
SFIRUN=${1:-build/dev/sfirun}
case "$SFIRUN" in /*) ;; *) SFIRUN="$PWD/$SFIRUN" ;; esac
D="$PWD/build/demo"
rm -rf "$D"
mkdir -p "$D/tokens" "$D/state" "$D/lock"
umask 077
# the demo's own state and licence-guard directories, never the station's
export SFIRUN_STATE_DIR="$D/state" SFIRUN_LOCK_DIR="$D/lock"

echo "== 1. demo firmware (180 KiB), fresh key and nonce"
openssl rand -out "$D/firmware.bin" 184320
openssl rand -out "$D/key.bin" 16
openssl rand -out "$D/nonce.bin" 12
# RDP stays at level 0 here so the demo can read the flash back; production uses 0xBB.
cat > "$D/ob.csv" <<CSV
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

echo "== 2. encrypted SFI image (protocol 2, no hash, split at 0x1E000 bytes of RAM)"
"$SFIRUN" image build --devid 0x450 --firmware "$D/firmware.bin" 0x08000000 \
    --key "$D/key.bin" --nonce "$D/nonce.bin" --ob "$D/ob.csv" --ramsize 0x1E000 \
    --token 0x081FF000 --hash 0 --protocol 2 -o "$D/demo.sfi"
"$SFIRUN" image info "$D/demo.sfi" | tail -n 4

echo "== 3. SoftHSM2 token 'sfi-demo': firmware key, nonce, 10 licences, simulator chip CA"
export SOFTHSM2_CONF="$D/softhsm2.conf"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$D" > "$SOFTHSM2_CONF"
printf '%s\n' "$(openssl rand -hex 8)" > "$D/pin"
softhsm2-util --init-token --free --label sfi-demo --so-pin "$(openssl rand -hex 8)" \
    --pin "$(cat "$D/pin")" >/dev/null
HSM="pkcs11:token=sfi-demo?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:$D/pin"
"$SFIRUN" hsm provision --hsm "$HSM" --key "$D/key.bin" --nonce "$D/nonce.bin" \
    --fwid DEMO-FW-1.0 --max 10 --ca vendor/sim/ca-pub.pem
"$SFIRUN" hsm info --hsm "$HSM"

echo "== 4. sfirun recipes/h753.lua on a blank simulated STM32H753"
"$SFIRUN" recipes/h753.lua --set image="$D/demo.sfi" --hsm "$HSM" \
    --probe "sim:stm32h753?state=$D/chip.state" --set verify="$D/firmware.bin" \
    --journal "$D/journal.sqlite"

echo "== 5. licence accounting"
"$SFIRUN" hsm info --hsm "$HSM"
"$SFIRUN" journal --journal "$D/journal.sqlite"
