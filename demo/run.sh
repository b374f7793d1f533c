#!/bin/sh
# demo/run.sh SFIRUN: the README's first command ends here. Runs the embedded default.
set -eu
SFIRUN=${1:-build/dev/sfirun}
exec "$SFIRUN" recipes/demo.lua
