#!/bin/sh
# packaging/check-installed.sh WORK SRC VERSION: the second half of check-deb.sh, run inside a
# private mount namespace where SRC (the source tree) is hidden under an empty tmpfs. Runs the
# program extracted in WORK/root as a station would: --version, --help, a bad option, every
# recipe's --describe, the man page, the bash completion and both examples. Prints
# "ok - ..." / "FAIL - ..." lines, then "done".
set -u
T=$1 SRC=$2 V=$3
R=$T/root
S=$R/usr/bin/sfirun
unset SFI_SCRIPTS SFIRUN SFI_SOURCE_DIR SFI_BUILD_DIR SOFTHSM2_CONF
export SFIRUN_STATE_DIR="$T/state" HOME="$T/home" LC_ALL=C.UTF-8
mkdir -p "$HOME"
cd "$T" || exit 1
ok() { echo "ok - $*"; }
bad() { echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
    d=$1; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
has() { printf "%s\n" "$1" | grep -q -- "$2"; }

check "the source tree is hidden" [ ! -e "$SRC/CMakeLists.txt" ]

out=$("$S" --version 2>&1); rc=$?
check "--version exits 0 and prints 'sfirun $V' ($(printf "%s" "$out" | head -n 1))" \
    [ "$rc" -eq 0 -a "$(printf "%s\n" "$out" | head -n 1)" = "sfirun $V" ]
out=$("$S" --help 2>&1); rc=$?
check "--help exits 0 and starts with the usage" [ "$rc" -eq 0 ] && has "$out" "^usage: sfirun "
commands=$(printf "%s\n" "$out" | sed -n '/^commands:/,/^$/ s/^  \([a-z-]*\) .*/\1/p')
check "--help lists the commands" [ -n "$commands" ]
err=$("$S" --no-such-option 2>&1 >/dev/null); rc=$?
check "an unknown option exits 2 with one line naming it ($err)" \
    sh -c '[ "$1" -eq 2 ] && [ "$(printf "%s\n" "$2" | wc -l)" -eq 1 ] &&
           printf "%s\n" "$2" | grep -q -- "--no-such-option" && ! printf "%s\n" "$2" | grep -qi traceback' \
    sh "$rc" "$err"

# where the program looks for its library: next to itself, through links, and a clear
# message when it is not there
mkdir -p "$T/alone/bin" "$T/linked/bin" "$T/empty"
cp "$S" "$T/alone/bin/sfirun"
ln -s "$S" "$T/linked/bin/sfirun"
check "a symbolic link to the program finds the installed library" \
    sh -c '"$1" --version >/dev/null 2>&1' sh "$T/linked/bin/sfirun"
cp -a "$R" "$T/moved"
check "a copy of the whole tree elsewhere finds its own library" \
    sh -c '"$1/usr/bin/sfirun" --describe "$1/usr/share/sfirun/recipes/h753.lua" >/dev/null 2>&1' sh "$T/moved"
rm -rf "$T/moved"
err=$("$T/alone/bin/sfirun" --version 2>&1); rc=$?
check "without its library the program exits 1 with one line saying so ($err)" \
    sh -c '[ "$1" -eq 1 ] && [ "$(printf "%s\n" "$2" | wc -l)" -eq 1 ] &&
           printf "%s\n" "$2" | grep -q "cannot find the sfirun Lua library"' sh "$rc" "$err"
err=$(SFI_SCRIPTS=$T/empty "$S" --version 2>&1); rc=$?
check "SFI_SCRIPTS naming a directory without the library is refused in one line ($err)" \
    sh -c '[ "$1" -eq 1 ] && [ "$(printf "%s\n" "$2" | wc -l)" -eq 1 ] &&
           printf "%s\n" "$2" | grep -q "SFI_SCRIPTS="' sh "$rc" "$err"

n=0
for recipe in $(find "$R/usr/share/sfirun/recipes" -name '*.lua' | sort); do
    n=$((n + 1))
    out=$("$S" --describe "$recipe" 2>&1); rc=$?
    check "--describe ${recipe#"$R"}" sh -c '[ "$1" -eq 0 ] && [ -n "$2" ]' sh "$rc" "$out"
    [ "$rc" -eq 0 ] || printf "%s\n" "$out" | head -n 3
done
check "every recipe was described ($n)" [ "$n" -ge 4 ]

# the man page renders without a warning and has a section per command
MAN=$R/usr/share/man/man1/sfirun.1.gz
warn=$(MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$MAN" 2>&1 >/dev/null)
check "man -l renders the man page without warnings${warn:+ ($warn)}" [ -z "$warn" ]
page=$(MANWIDTH=80 man -l -P cat "$MAN" 2>/dev/null)
for s in NAME SYNOPSIS OPTIONS "EXIT STATUS" ENVIRONMENT SFI_SCRIPTS SFIRUN_STATE_DIR; do
    check "the man page has $s" has "$page" "^$s\|^ *$s$"
done
for c in $commands; do
    up=$(printf "%s" "$c" | tr a-z A-Z)
    check "the man page has a section for '$c'" has "$page" "^COMMAND: $up$"
done

# the bash completion loads and completes commands, verbs and options
COMP=$R/usr/share/bash-completion/completions/sfirun
complete_words() { # complete_words WORD... -> what bash would offer for the last word
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _sfirun; printf "%s\n" "${COMPREPLY[@]}"' \
        sh "$COMP" "$@"
}
check "the completion loads in bash" bash -c '. "$1" && complete -p sfirun >/dev/null' sh "$COMP"
check "it completes 'sfirun im' to image" [ "$(complete_words sfirun im)" = image ]
check "it completes 'sfirun image b' to build" [ "$(complete_words sfirun image b)" = build ]
check "it completes 'sfirun image build --dev' with --devid" has "$(complete_words sfirun image build --dev)" "^--devid$"

# examples/simulated-install.sh: a SoftHSM2 token and the h753 recipe on the simulator
EX=$R/usr/share/doc/sfirun/examples
W=$T/sim
if [ ! -f /usr/lib/softhsm/libsofthsm2.so ]; then
    bad "SoftHSM2 is not installed: the examples cannot run (./build.sh deps)"
    echo done
    exit 0
fi
SFIRUN=$S sh "$EX/simulated-install.sh" "$W" > "$T/sim.log" 2>&1; rc=$?
check "examples/simulated-install.sh exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || tail -n 5 "$T/sim.log"
export SOFTHSM2_CONF="$W/softhsm2.conf"
HSM="pkcs11:token=sfi-sim?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:$W/pin"
counter() { "$S" hsm info --hsm "$HSM" --json 2>/dev/null | sed -n 's/.*"counter":\([0-9]*\).*/\1/p'; }
rows() { "$S" journal --journal "$W/journal.sqlite" --json 2>/dev/null | grep '"outcome"'; }
check "the token has 9 licences left" [ "$(counter)" = 9 ]
j=$(rows)
check "the journal has one licence row: ok, station sim-station, counter 10->9, h753" \
    sh -c '[ "$(printf "%s\n" "$1" | wc -l)" -eq 1 ] && printf "%s\n" "$1" | grep "\"outcome\":\"ok\"" |
           grep "\"station\":\"sim-station\"" | grep "\"counter_before\":10" | grep "\"counter_after\":9" |
           grep -q "\"recipe\":\"h753\""' sh "$j"

# examples/station.sh: the h753 recipe in a bundle signed by an OEM key, on a second chip
openssl genpkey -algorithm ed25519 -out "$W/oem.pem" 2>/dev/null
openssl pkey -in "$W/oem.pem" -pubout -out "$W/oem.pub"
openssl genpkey -algorithm ed25519 -out "$W/other.pem" 2>/dev/null
openssl pkey -in "$W/other.pem" -pubout -out "$W/other.pub"
(cd "$R/usr/share/sfirun/recipes" && "$S" bundle create h753.lua --sign "$W/oem.pem" -o "$W/h753.sfib") \
    > "$T/bundle.log" 2>&1
check "bundle create signs the installed h753 recipe" [ -f "$W/h753.sfib" ]
station() { # station TRUST: station.sh on a fresh simulated chip
    SFIRUN=$S SFI_PROBE="sim:stm32h753?state=$W/chip-$1.state" SFI_HSM=$HSM SFI_STATION=line-1 \
        SFI_JOURNAL="$W/journal.sqlite" sh "$EX/station.sh" "$W/h753.sfib" "$W/$1.pub" "$W/app.sfi"
}
err=$(station other 2>&1 >/dev/null); rc=$?
check "station.sh refuses a bundle not signed by the trusted key (exit $rc)" \
    sh -c '[ "$1" -ne 0 ] && [ "$2" = 9 ]' sh "$rc" "$(counter)"
station oem > "$T/station.log" 2>&1; rc=$?
check "examples/station.sh installs the bundle (exit 0)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || tail -n 5 "$T/station.log"
check "the token has 8 licences left" [ "$(counter)" = 8 ]
j=$(rows)
check "the journal has a second row: ok, station line-1, counter 9->8" \
    sh -c '[ "$(printf "%s\n" "$1" | wc -l)" -eq 2 ] && printf "%s\n" "$1" | tail -n 1 | grep "\"outcome\":\"ok\"" |
           grep "\"station\":\"line-1\"" | grep "\"counter_before\":9" | grep -q "\"counter_after\":8"' sh "$j"
echo done
