#!/bin/sh
# make.sh: records the captures in this directory again (see README.md for what each holds).
# Needs root (packet capture on lo), tcpdump, dumpcap (tshark), OpenOCD 0.12 and a built
# sfirun:   sudo tests/data/captures/make.sh build/dev/sfirun
set -eu
SFIRUN=$(realpath "${1:-build/dev/sfirun}")
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'kill $(cat "$TMP"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$TMP"' EXIT
PORT=17184

server() { # start sim-server on $PORT with a fresh chip
    rm -f "$TMP/state.bin"
    "$SFIRUN" sim-server --port $PORT --set "state=$TMP/state.bin" >"$TMP/server.log" 2>&1 &
    echo $! >"$TMP/server.pid"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        grep -q "sim-server: simulated" "$TMP/server.log" 2>/dev/null && return 0
        sleep 0.2
    done
}
stop_server() { kill -INT "$(cat "$TMP/server.pid")"; wait "$(cat "$TMP/server.pid")" || true; rm "$TMP/server.pid"; }

# The kernel hands packets to tcpdump in blocks: wait 2 s before stopping it, or the last
# block is lost (-U/immediate mode drops packets instead).
capture() { # capture FILE TOOL IFACE: start the capture tool on IFACE, writing FILE
    case "$2" in
    tcpdump) tcpdump -i "$3" -s 65535 -B 65536 -w "$1" "tcp port $PORT" >"$TMP/cap.log" 2>&1 & ;;
    dumpcap) dumpcap -i "$3" -s 65535 -f "tcp port $PORT" -w "$1" >"$TMP/cap.log" 2>&1 & ;;
    esac
    echo $! >"$TMP/cap.pid"
    sleep 1
}
stop_capture() { sleep 2; kill -INT "$(cat "$TMP/cap.pid")"; wait "$(cat "$TMP/cap.pid")" || true; rm "$TMP/cap.pid"; }

openocd_run() { # OpenOCD 0.12 through its own ST-LINK driver (hla, stlink-server backend)
    timeout -s KILL 60 openocd -f interface/stlink.cfg -c "hla_stlink_backend tcp $PORT" \
        -c "set WORKAREASIZE 0" -f target/stm32h7x.cfg \
        -c "gdb_port disabled" -c "telnet_port disabled" -c "tcl_port disabled" -c init "$@" \
        -c shutdown >"$TMP/openocd.log" 2>&1
}

# 64 bytes of firmware: two 32-byte flash words
printf '%s' 'sfirun trace capture firmware: two STM32H7 flash words, 64 bytes.' | head -c 64 >"$TMP/fw.bin"

# 1. OpenOCD: memory writes, option read, a flash program, resets (Ethernet, tcpdump -i lo)
server
capture "$HERE/openocd_h753_lo.pcap" tcpdump lo
openocd_run -c "reset halt" -c "mww 0x24000000 0x11223344" -c "mwh 0x24000010 0xBEEF" \
    -c "stm32h7x option_read 0 0x1c" -c "flash write_image erase $TMP/fw.bin 0x08020000" \
    -c "reset halt"
stop_capture
stop_server

# 2. OpenOCD init only, captured on every interface (Linux cooked v2, tcpdump -i any)
server
capture "$HERE/openocd_init_any.pcap" tcpdump any
openocd_run -c "reset halt"
stop_capture
stop_server

# 3. The same as pcapng (dumpcap, as Wireshark writes it)
server
capture "$HERE/openocd_init_lo.pcapng" dumpcap lo
openocd_run -c "reset halt"
stop_capture
stop_server

# 4. sfirun's own recording of an option-byte read (record= on the probe URI)
server
"$SFIRUN" ob read --probe "stlink-tcp:$PORT?record=$HERE/sfirun_ob_read.pcap" >/dev/null
stop_server
chmod 0644 "$HERE"/*.pcap "$HERE"/*.pcapng
ls -l "$HERE"
