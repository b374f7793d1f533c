-- trace_record_test.lua: record=FILE on stlink-tcp probe URIs. The h753 recipe runs twice on
-- fresh simulated chips behind `sfirun sim-server`, recording each session: the recordings
-- show no divergence; a run with a bigger image diverges, at the flash read of the image's
-- size and at the SFI header write. Recordings are 0600, read by tshark without error, and a
-- path that cannot be created fails before any probe traffic.
local T = require "sfi.test"
local simserver = require "simserver"
local util = require "sfi.util"

local SFIRUN <const> = assert(os.getenv("SFIRUN"))
local SRC <const> = os.getenv("SFI_SOURCE_DIR") or "."
local dir = T.tmpdir()

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function image(name, size, seed)
  T.writefile(dir .. "/" .. name .. ".bin", require("fwgen").bytes(size, seed))
  local code, out = T.sh(string.format("%s image build --devid 0x450 --firmware %s 0x08000000 --key %s " ..
    "--nonce %s --ramsize 0x1E000 --hash 0 -o %s", SFIRUN, q(dir .. "/" .. name .. ".bin"),
    q(dir .. "/key.bin"), q(dir .. "/nonce.bin"), q(dir .. "/" .. name .. ".sfi")))
  assert(code == 0, out)
  return dir .. "/" .. name .. ".sfi"
end

-- One recipe run on a fresh chip, recorded to rec; returns exit code and output.
local function run(name, img, rec)
  local srv = simserver.start { dir = dir, target = "stm32h753", set = { state = dir .. "/" .. name .. ".state" } }
  local ok, code, out = pcall(T.sh, string.format("SFIRUN_STATE_DIR=%s %s %s/recipes/h753.lua --set image=%s " ..
    "--set key=%s --set nonce=%s --probe %s --journal %s", q(dir .. "/sd-" .. name), SFIRUN, SRC, q(img),
    q(dir .. "/key.bin"), q(dir .. "/nonce.bin"), q(string.format("stlink-tcp:%d?record=%s", srv.port, rec)),
    q(dir .. "/" .. name .. ".sqlite")))
  srv:stop()
  assert(ok, code)
  return code, out
end

T.writefile(dir .. "/key.bin", string.rep("\x42", 16))
T.writefile(dir .. "/nonce.bin", string.rep("\x24", 12))

T.case("two recordings of the same install: no divergence; a bigger image diverges", function ()
  local small, big = image("small", 30000, 5), image("big", 90000, 6)
  for _, r in ipairs { { "a", small }, { "b", small }, { "c", big } } do
    local code, out = run(r[1], r[2], dir .. "/" .. r[1] .. ".pcap")
    T.eq(code, 0, out)
  end
  local mode = T.sh("stat -c %a " .. q(dir .. "/a.pcap"))
  T.eq(mode, 0)
  local _, perm = T.sh("stat -c %a " .. q(dir .. "/a.pcap"))
  T.eq(perm, "600\n")
  local code, out = T.sh(string.format("%s trace diff %s %s --all", SFIRUN, q(dir .. "/a.pcap"),
    q(dir .. "/b.pcap")))
  T.eq(code, 0, out)
  assert(out:find("no divergence", 1, true), out)
  -- the recording names the SFI addresses from the pack
  code, out = T.sh(string.format("%s trace %s --all", SFIRUN, q(dir .. "/a.pcap")))
  T.eq(code, 0, out)
  assert(out:match("write  0x24020800 SFI_LICENCE 136 bytes"), out)
  assert(out:match("write  0x24021000 SFI_HEADER 30058 bytes"), out)
  assert(out:match("write32 0x2401FFF0 RSS_MAILBOX <%- 0x52535331"), out)
  -- the bigger image: divergences at the read of the image's flash range and at the header
  code, out = T.sh(string.format("%s trace diff %s %s --all --json", SFIRUN, q(dir .. "/a.pcap"),
    q(dir .. "/c.pcap")))
  T.eq(code, 1, out)
  local divs = {}
  for line in out:gmatch("[^\n]+") do
    local e = util.json_flat(line)
    if e and e.event == "divergence" then divs[#divs + 1] = e end
  end
  assert(#divs >= 2, out)
  T.eq(divs[1].a, "read 0x08000000 30000")
  T.eq(divs[1].b, "read 0x08000000 90000")
  T.eq(divs[2].a:match("^write 0x24021000 %d+"), "write 0x24021000 30058")
  T.eq(divs[2].b:match("^write 0x24021000 %d+"), "write 0x24021000 90058")
  -- with --data, content counts too: each fresh chip has its own certificate, so the
  -- certificate read and the licence differ; the image (header and areas) is the same
  code, out = T.sh(string.format("%s trace diff %s %s --all --data", SFIRUN, q(dir .. "/a.pcap"),
    q(dir .. "/b.pcap")))
  T.eq(code, 1, out)
  assert(out:match("\n  A%s+%d+%s+[%d.]+%s+read   0x1FF1E000 CHIP_CERTIFICATE 136 bytes"), out)
  assert(out:match("\n  B%s+%d+%s+[%d.]+%s+write  0x24020800 SFI_LICENCE 136 bytes"), out)
  assert(not out:find("SFI_HEADER", 1, true), out)
end)

T.case("tshark reads a recording without error, checksums good", function ()
  if T.sh("command -v tshark >/dev/null") ~= 0 then T.skip("tshark not installed") end
  local rec = dir .. "/a.pcap"
  if not io.open(rec) then
    local code, out = run("d", image("small2", 30000, 5), rec)
    T.eq(code, 0, out)
  end
  local code, out = T.sh("tshark -r " .. q(rec) .. " -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE " ..
    "-T fields -e tcp.checksum.status -e ip.checksum.status 2>/dev/null | sort | uniq -c")
  T.eq(code, 0, out)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  T.eq(#lines, 1, out)
  assert(lines[1]:match("^%s*%d+%s+1%s+1$"), out)
  code, out = T.sh("tshark -r " .. q(rec) .. " -q -z io,phs 2>&1")
  T.eq(code, 0, out)
  assert(out:find("tcp", 1, true), out)
end)

T.case("a recording path that cannot be created fails the open before any probe traffic", function ()
  local srv = simserver.start { dir = dir, target = "stm32h753", args = "--once" }
  local code, out = T.sh(string.format("%s ob read --probe %s", SFIRUN,
    q(string.format("stlink-tcp:%d?record=%s/no/such/dir/x.pcap", srv.port, dir))))
  T.eq(code, 1, out)
  assert(out:find("cannot create the recording", 1, true), out)
  assert(out:find("no/such/dir/x.pcap", 1, true), out)
  -- the server never saw a client: it is still waiting for its one client
  assert(srv:running(), "sim-server served a client")
  srv:stop()
  code, out = T.sh(string.format("%s ob read --probe 'stlink-tcp:1?record='", SFIRUN))
  T.eq(code, 2, out)
  assert(out:find("record", 1, true), out)
  code, out = T.sh(string.format("%s ob read --probe 'sim:stm32h753?record=%s/x.pcap'", SFIRUN, dir))
  T.eq(code, 2, out)
end)
