-- trace_cli_test.lua: `sfirun trace` and `sfirun trace diff` on the committed captures
-- (tests/data/captures: OpenOCD 0.12 and sfirun talking to sim-server, captured with tcpdump
-- and dumpcap): the operations OpenOCD was told to do, with register names; JSON; link types;
-- diff; and bad input (exit 2 with the problem named).
local T = require "sfi.test"
local util = require "sfi.util"

local SFIRUN <const> = assert(os.getenv("SFIRUN"))
local SRC <const> = os.getenv("SFI_SOURCE_DIR") or "."
local CAP <const> = SRC .. "/tests/data/captures/"
local dir = T.tmpdir()

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function trace(args)
  return T.sh(SFIRUN .. " trace " .. args)
end

local function json_lines(out)
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = assert(util.json_flat(line), line) end
  return list
end

local function has(out, s) assert(out:find(s, 1, true), "missing '" .. s .. "' in\n" .. out) end

T.case("OpenOCD session: memory writes, option read, flash words, resets, named", function ()
  local code, out = trace(q(CAP .. "openocd_h753_lo.pcap") .. " --port 17184")
  T.eq(code, 0, out)
  has(out, "server GET_SERVER_VERSION -> API v2")
  has(out, "ST-LINK V3J7S0 (0483:374F)")
  has(out, "idcode DPIDR = 0x6BA02477")
  has(out, "read32 0xE000ED00 CPUID = 0x411FC271")
  has(out, "write32 0xE000EDF0 DHCSR <- 0xA05F0001")
  has(out, "write32 0x24000000 <- 0x11223344")
  has(out, "write16 0x24000010 <- 0xBEEF")
  has(out, "read32 0x5C001000 DBGMCU_IDCODE = 0x20036450")
  has(out, "read16 0x1FF1E880 FLASH_SIZE = 0x0800")
  has(out, "read32 0x5200201C FLASH_OPTSR_CUR = 0x1BC6AAF0")
  has(out, "write32 0x52002004 FLASH_KEYR1 <- 0x45670123")
  has(out, "write32 0x5200200C FLASH_CR1 <- 0x00000032")
  has(out, "write32 0xE000ED0C AIRCR <- 0x05FA0004")
  has(out, "system reset (APIV2_RESETSYS)")
  has(out, "device pack STM32H74x/75x")
  -- the two flash words, with the sha256 of each 32-byte half of the firmware
  local fw = ("sfirun trace capture firmware: two STM32H7 flash words, 64 bytes."):sub(1, 64)
  local sha = require("sfi.core.trace").sha256
  has(out, "write  0x08020000 bank1+0x20000 32 bytes sha256 " .. sha(fw:sub(1, 32)):sub(1, 16))
  has(out, "write  0x08020020 bank1+0x20020 32 bytes sha256 " .. sha(fw:sub(33, 64)):sub(1, 16))
  -- polling collapsed: the register reads after reset halt repeat DHCSR reads with a count
  assert(out:match("DHCSR = 0x%x+  x%d+"), out)
end)

T.case("--json: one object per operation with stable keys", function ()
  local code, out = trace(q(CAP .. "openocd_h753_lo.pcap") .. " --port 17184 --json")
  T.eq(code, 0, out)
  local ops = json_lines(out)
  assert(#ops > 100)
  local words = {}
  for _, o in ipairs(ops) do
    assert(o.op and o.frame and o.t and o.stream and o["repeat"] and o.cmds, util.json(o))
    if o.op == "write" and o.addr and o.addr >= 0x08000000 and o.addr < 0x08200000 then
      words[#words + 1] = o
    end
  end
  T.eq(#words, 2, "flash words")
  T.eq(words[1].addr, 0x08020000)
  T.eq(words[1].len, 32)
  local fw = ("sfirun trace capture firmware: two STM32H7 flash words, 64 bytes."):sub(1, 64)
  T.eq(words[1].sha256, require("sfi.core.trace").sha256(fw:sub(1, 32)))
  T.eq(words[1].name, "bank1+0x20000")
end)

T.case("link types: SLL2 (tcpdump -i any), pcapng (dumpcap), sfirun's own recording", function ()
  local code, any = trace(q(CAP .. "openocd_init_any.pcap") .. " --port 17184")
  T.eq(code, 0, any)
  has(any, "Linux cooked v2 (SLL2)")
  local code2, ng = trace(q(CAP .. "openocd_init_lo.pcapng") .. " --port 17184")
  T.eq(code2, 0, ng)
  -- the same OpenOCD session seen through two link types gives the same operations
  local function body(s) return (s:gsub("[^\n]*\n", function (l) return (l:gsub("^%s*%d+%s+[%d.]+", "")) end)) end
  T.eq(body(any):gsub("\n%-%-[^\n]*", ""), body(ng):gsub("\n%-%-[^\n]*", ""))
  local code3, rec = trace(q(CAP .. "sfirun_ob_read.pcap") .. " --port 17184")
  T.eq(code3, 0, rec)
  has(rec, "read   0x5200201C FLASH_OPTSR_CUR 308 bytes")
  has(rec, "write32 0xE000EDF0 DHCSR <- 0xA05F0003")
  -- --all finds the server on any port
  local code4, all = trace(q(CAP .. "sfirun_ob_read.pcap") .. " --all")
  T.eq(code4, 0, all)
  T.eq(all, rec)
  -- --pack names the addresses without the capture's IDCODE read
  local code5, pk = trace(q(CAP .. "openocd_init_any.pcap") .. " --port 17184 --pack stm32h753")
  T.eq(code5, 0, pk)
  has(pk, "write32 0x5C001004 DBGMCU_CR <- ")
end)

T.case("diff: same session through two link types is no divergence; different ones diverge", function ()
  local code, out = trace("diff " .. q(CAP .. "openocd_init_any.pcap") .. " " ..
    q(CAP .. "openocd_init_lo.pcapng") .. " --port 17184")
  T.eq(code, 0, out)
  has(out, "no divergence")
  code, out = trace("diff " .. q(CAP .. "openocd_init_any.pcap") .. " " ..
    q(CAP .. "openocd_h753_lo.pcap") .. " --port 17184")
  T.eq(code, 1, out)
  has(out, "divergence 1:")
  -- init is the same: the first difference is what came after reset halt (the memory write)
  has(out, "  B ")
  assert(out:match("  B%s+%d+%s+[%d.]+%s+write32 0x24000000 <%- 0x11223344") or
    out:match("  A%s+%d+%s+[%d.]+%s+mode DEBUG"), out)
  code, out = trace("diff " .. q(CAP .. "openocd_init_any.pcap") .. " " ..
    q(CAP .. "openocd_h753_lo.pcap") .. " --port 17184 --json")
  T.eq(code, 1, out)
  local ev = json_lines(out)
  T.eq(ev[#ev].event, "summary")
  assert(ev[#ev].divergences >= 1)
end)

T.case("a frame missing from the capture: a GAP line, then the stream goes on", function ()
  if T.sh("command -v editcap >/dev/null") ~= 0 then T.skip("editcap not installed") end
  local code, whole = trace(q(CAP .. "openocd_h753_lo.pcap") .. " --port 17184")
  T.eq(code, 0, whole)
  -- the frame carrying OpenOCD's first flash-word write (host to probe)
  local frame = whole:match("\n%s*(%d+)%s+[%d.]+%s+write  0x08020000 ")
  assert(frame, whole)
  local cut = dir .. "/gap.pcap"
  code = T.sh(string.format("editcap %s %s %d", q(CAP .. "openocd_h753_lo.pcap"), q(cut), frame - 1))
  T.eq(code, 0)
  local out
  code, out = trace(q(cut) .. " --port 17184")
  T.eq(code, 0, out)
  assert(out:match("GAP    64 bytes lost %(host to probe%); resynchronising"), out)
  has(out, ", 1 gap(s)")
  assert(not out:find("write  0x08020000 ", 1, true), out)
  -- everything after the gap is decoded as before
  has(out, "write  0x08020020 bank1+0x20020 32 bytes sha256 1cb379840dd61f60")
  has(out, "system reset (APIV2_RESETSYS)")
end)

T.case("bad input: exit 2 naming the problem", function ()
  local code, out = trace(q(dir .. "/missing.pcap"))
  T.eq(code, 2, out)
  has(out, "missing.pcap")
  T.writefile(dir .. "/text.pcap", "this is not a capture\n")
  code, out = trace(q(dir .. "/text.pcap"))
  T.eq(code, 2, out)
  has(out, "is not a pcap or pcapng capture")
  -- unknown link type: a pcap header for DLT_PPP (9)
  T.writefile(dir .. "/ppp.pcap", string.pack("<I4I2I2i4I4I4I4", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 9))
  code, out = trace(q(dir .. "/ppp.pcap"))
  T.eq(code, 2, out)
  has(out, "link type 9")
  -- cut short: what came before is printed, then the error
  local whole = T.readfile(CAP .. "openocd_h753_lo.pcap")
  T.writefile(dir .. "/cut.pcap", whole:sub(1, #whole // 2 + 7))
  code, out = trace(q(dir .. "/cut.pcap") .. " --port 17184")
  T.eq(code, 2, out)
  has(out, "idcode DPIDR = 0x6BA02477")
  has(out, "damaged or cut short")
  -- no ST-LINK traffic: the wrong port; says what the capture held
  code, out = trace(q(CAP .. "openocd_init_any.pcap"))
  T.eq(code, 2, out)
  has(out, "no ST-LINK traffic found")
  has(out, "TCP segment(s) on port(s) 17184")
  -- a USB capture of another device only (a mouse): says which devices it saw
  local desc = string.char(18, 1, 0, 2, 0, 0, 0, 8, 0x6D, 0x04, 0x2C, 0xC0, 0, 1, 1, 2, 0, 1)
  local function urb(typ, xfer, ep, data)
    return string.pack("<I8BBBBI2BBi8i4i4I4I4c8i4i4I4I4", 1, typ:byte(), xfer, ep, 3, 1, 45,
      #data > 0 and 0 or 60, 0, 0, 0, #data, #data, ("\0"):rep(8), 0, 0, 0, 0) .. data
  end
  local frames = { urb("C", 2, 0x80, desc), urb("S", 3, 0x01, ("\xF2\x07"):rep(8)), urb("C", 1, 0x81, "\1\2\3") }
  local pcap = string.pack("<I4I2I2i4I4I4I4", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 220)
  for i, f in ipairs(frames) do pcap = pcap .. string.pack("<I4I4I4I4", 100, i, #f, #f) .. f end
  T.writefile(dir .. "/mouse.pcap", pcap)
  code, out = trace(q(dir .. "/mouse.pcap"))
  T.eq(code, 2, out)
  has(out, "no ST-LINK traffic found: 3 frame(s) of Linux usbmon (memory-mapped): 3 USB transfer " ..
    "event(s) from 1 device(s) (046d:c02c)")
  -- usage
  code, out = trace("")
  T.eq(code, 2, out)
  code, out = trace("diff " .. q(CAP .. "openocd_init_any.pcap"))
  T.eq(code, 2, out)
  code, out = trace(q(CAP .. "openocd_init_any.pcap") .. " --pack stm32nope")
  T.eq(code, 2, out)
  assert(not out:find("traceback", 1, true), out)
end)
