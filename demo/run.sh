#!/bin/sh
# demo/run.sh [SFIRUN]: the main job on the embedded default, end to end, from nothing, with the
# sfirun just built and this source tree's recipes and vendor data. It is the packaged example
# packaging/examples/simulated-install.sh (one script, so the demo and the installed example
# cannot drift apart):
#  1. a demo firmware, a fresh firmware key and nonce, an option-byte CSV;
#  2. the encrypted SFI image (sfirun image build, as ST's Trusted Package Creator would);
#  3. a throw-away SoftHSM2 token provisioned as the OEM would (key, nonce, firmware ID,
#     licence counter, trusted chip CA);
#  4. sfirun recipes/h753.lua on a blank simulated STM32H753, licence from the token, and a
#     check that the chip's flash equals the plaintext firmware;
#  5. the licence accounting: the token's counter and the station's journal.
# Everything is written under build/demo/ (keys included: a demo, not a production set-up).
set -eu
cd "$(dirname "$0")/.."
SFIRUN=${1:-build/dev/sfirun}
case "$SFIRUN" in /*) ;; *) SFIRUN="$PWD/$SFIRUN" ;; esac
D="$PWD/build/demo"
rm -rf "$D"
mkdir -p "$D/state" "$D/lock"
# the demo's own state and licence-guard directories, never the station's
SFIRUN_STATE_DIR="$D/state" SFIRUN_LOCK_DIR="$D/lock" SFIRUN="$SFIRUN" SFIRUN_DATA="$PWD" \
    exec sh packaging/examples/simulated-install.sh "$D/work"
