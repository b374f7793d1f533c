-- trace_openocd_test.lua: fresh captures (tcpdump on lo, and dumpcap as Wireshark writes
-- pcapng) of OpenOCD 0.12 talking to `sfirun sim-server`; `sfirun trace` must show exactly the
-- memory writes, the option-byte read, the flash words (sha256 of each) and the resets
-- OpenOCD was told to do. Packet capture needs root: skipped otherwise.
local T = require "sfi.test"
local util = require "sfi.util"
local simserver = require "simserver"
local sha256 = require("sfi.core.trace").sha256

local SFIRUN <const> = assert(os.getenv("SFIRUN"))
local dir = T.tmpdir()

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function need(tool)
  if T.sh("command -v " .. tool .. " >/dev/null") ~= 0 then T.skip(tool .. " not installed") end
end

local function need_root()
  local _, id = T.sh("id -u")
  if id ~= "0\n" then T.skip("packet capture needs root") end
end

-- Starts a capture of TCP port on lo; returns a stop function (waits for the last block).
local function capture(tool, file, port)
  local cmd = tool == "tcpdump" and
    string.format("tcpdump -i lo -s 65535 -B 65536 -w %s 'tcp port %d'", q(file), port) or
    string.format("dumpcap -i lo -s 65535 -f 'tcp port %d' -w %s", port, q(file))
  local f = assert(io.popen(string.format("exec %s >%s 2>&1 & echo $!", cmd, q(file .. ".log"))))
  local pid = assert(math.tointeger(tonumber(f:read("l"))))
  f:close()
  for _ = 1, 100 do -- until the tool says it listens
    local log = T.readfile(file .. ".log") or ""
    if log:find("istening on", 1, true) or log:find("Capturing on", 1, true) then break end
    simserver.sleep(0.05)
  end
  simserver.sleep(0.3)
  return function ()
    simserver.sleep(2) -- the kernel hands packets over in blocks
    os.execute("kill -INT " .. pid)
    for _ = 1, 100 do
      if os.execute("kill -0 " .. pid .. " 2>/dev/null") ~= true then return end
      simserver.sleep(0.05)
    end
    os.execute("kill -KILL " .. pid .. " 2>/dev/null")
  end
end

local openocd = simserver.openocd

local function ops(file, port)
  local code, out = T.sh(string.format("%s trace %s --port %d --json", SFIRUN, q(file), port))
  T.eq(code, 0, out)
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = assert(util.json_flat(line), line) end
  return list
end

local function session(tool, ext)
  need("openocd")
  need(tool)
  need_root()
  local fw = require("fwgen").bytes(96, 3) -- three 32-byte flash words
  T.writefile(dir .. "/fw.bin", fw)
  local srv = simserver.start { dir = dir, set = { state = dir .. "/" .. tool .. ".state" } }
  local file = dir .. "/" .. tool .. ext
  local stop = capture(tool, file, srv.port)
  local ok, code, out = pcall(openocd, srv.port, { "reset halt", "mww 0x24000000 0xCAFEF00D",
    "mwh 0x24000100 0x1234", "mwb 0x24000203 0x5A", "stm32h7x option_read 0 0x1c",
    "flash write_image erase " .. dir .. "/fw.bin 0x08040000", "reset halt" })
  stop()
  srv:stop()
  assert(ok, code)
  T.eq(code, 0, out)
  local list = ops(file, srv.port)
  -- exactly the three memory writes to RAM, in order, with their widths and values
  local ram = {}
  for _, o in ipairs(list) do
    if o.op == "write" and o.addr >= 0x24000000 and o.addr < 0x24080000 then ram[#ram + 1] = o end
  end
  T.eq(#ram, 3, "RAM writes")
  T.eq({ ram[1].addr, ram[1].len, ram[1].value }, { 0x24000000, 4, 0xCAFEF00D })
  T.eq({ ram[2].addr, ram[2].len, ram[2].value }, { 0x24000100, 2, 0x1234 })
  T.eq({ ram[3].addr, ram[3].len, ram[3].value }, { 0x24000203, 1, 0x5A })
  -- the option read: OPTSR_CUR by name, with the value OpenOCD printed
  local printed = out:match("Option Register: <0x5200201c> = (0x%x+)")
  local seen
  for _, o in ipairs(list) do
    if o.op == "read" and o.addr == 0x5200201C and o.len == 4 then seen = o end
  end
  assert(seen, "no FLASH_OPTSR_CUR read")
  T.eq(seen.name, "FLASH_OPTSR_CUR")
  T.eq(seen.value, math.tointeger(tonumber(printed)))
  -- the flash words, each with the sha256 of its 32 bytes; the sector erase before them
  local words = {}
  local erase
  for _, o in ipairs(list) do
    if o.op == "write" and o.addr >= 0x08000000 and o.addr < 0x08200000 then words[#words + 1] = o end
    if o.op == "write" and o.name == "FLASH_CR1" and o.value == 0x234 then erase = o end
  end
  assert(erase, "no sector 2 erase (FLASH_CR1 <- 0x234)")
  T.eq(#words, 3, "flash words")
  for i, w in ipairs(words) do
    T.eq(w.addr, 0x08040000 + 32 * (i - 1))
    T.eq(w.len, 32)
    T.eq(w.sha256, sha256(fw:sub(32 * i - 31, 32 * i)), "word " .. i)
  end
  -- the resets: two `reset halt` = AIRCR SYSRESETREQ then RESETSYS, twice
  local aircr, resets = 0, 0
  for _, o in ipairs(list) do
    if o.op == "write" and o.name == "AIRCR" and o.value == 0x05FA0004 then aircr = aircr + 1 end
    if o.op == "reset" then resets = resets + 1 end
  end
  T.eq(aircr, 2, "AIRCR writes")
  T.eq(resets, 2, "RESETSYS")
  return file, srv.port
end

T.case("tcpdump capture of OpenOCD: writes, option read, flash words, resets", function ()
  session("tcpdump", ".pcap")
end)

T.case("dumpcap (pcapng) capture of the same session", function ()
  session("dumpcap", ".pcapng")
end)
