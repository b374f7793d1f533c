#!/bin/sh
# packaging/strip.sh FILE: the `package` preset's CMAKE_STRIP. Strips as Debian's dh_strip does
# (CPack runs plain `strip FILE`, which keeps the compiler's .comment section).
exec strip --remove-section=.comment --remove-section=.note --strip-unneeded "$@"
