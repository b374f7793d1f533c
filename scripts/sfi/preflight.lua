--- sfi.preflight: every precondition of an SFI install the device pack knows, checked by
-- reading only, before any licence is asked for. Each check answers pass, fail or unknown,
-- with what it saw and the fix. The install pipeline runs them in its "preflight" step (a
-- failure stops the flow with TARGET before the licence step); `sfirun preflight` runs them
-- alone and lists them all. Which checks are facts and which follow the model:
-- docs/preflight.md.
local device = require "sfi.device"
local flow = require "sfi.flow"

local M = {}

local function hexr(lo, hi) return string.format("0x%08X..0x%08X", lo, hi - 1) end

-- Flash ranges of the chip in the socket: the pack's banks cut to its flash size register.
local function chip_flash(c)
  return device.flash_ranges(c.pack, c.info.flash_kb)
end

-- [lo, hi) is covered by the ranges, one after the other where they touch (an area may run
-- from bank 1 into bank 2 when the banks are contiguous, as on the STM32H74x/75x).
local function in_ranges(ranges, lo, hi)
  local at, moved = lo, true
  while at < hi and moved do
    moved = false
    for _, r in ipairs(ranges) do
      if at >= r.start and at < r.start + r.size then at, moved = r.start + r.size, true end
    end
  end
  return at >= hi
end

-- F areas of the image: {lo, hi, index}
local function f_areas(c)
  local out = {}
  for _, a in ipairs(c.img:areas()) do
    if a.type == "F" then out[#out + 1] = { lo = a.addr, hi = a.addr + a.size, index = a.index } end
  end
  return out
end

-- Protected areas: {name, start, end} from the option bytes (start > end means empty).
local function area_field(v, prefix, bank)
  local s, e = v[prefix .. "_START" .. bank], v[prefix .. "_END" .. bank]
  return s, e
end

--- M.CHECKS: the checks in order, each {name, doc, run = function (c) -> status, detail, fix}
-- (status true = pass, false = fail, nil = unknown). c: the install context after "resume".
M.CHECKS = {
  {
    name = "rdp", doc = "readout protection at level 0 (SFI over SWD needs it)",
    run = function (c)
      local rdp = c.ob.RDP
      if rdp == 0xAA then return true, "RDP 0xAA (level 0)" end
      return false, string.format("RDP 0x%02X (level %s)", rdp, rdp == 0xCC and "2" or "1"),
        rdp == 0xCC and "level 2 is final: this chip cannot take SFI" or
        "regress to level 0 (erases the flash): sfirun recipes/recover/rdp_regression.lua"
    end,
  },
  {
    name = "security", doc = "SECURITY and ST_RAM_SIZE as they are; the write mode sets them",
    run = function (c)
      local wm = c.o.write_mode or {}
      local d = string.format("SECURITY=%d ST_RAM_SIZE=%d", c.ob.SECURITY or -1, c.ob.ST_RAM_SIZE or -1)
      if wm.ST_RAM_SIZE and c.ob.ST_RAM_SIZE ~= wm.ST_RAM_SIZE then
        d = d .. string.format(" (the write mode sets ST_RAM_SIZE=%d)", wm.ST_RAM_SIZE)
      end
      return true, d
    end,
  },
  {
    name = "protected areas", doc = "PCROP and secure areas empty, or erasable by an RDP regression",
    run = function (c)
      local busy, fixable = {}, true
      for bank = 1, #c.pack.memory.flash do
        for _, kind in ipairs { { "PROT_AREA", "DMEP", "PCROP" }, { "SEC_AREA", "DMES", "secure area" } } do
          local s, e = area_field(c.ob, kind[1], bank)
          if s and e and s <= e then
            local dme = c.ob[kind[2] .. bank]
            busy[#busy + 1] = string.format("%s %d: 0x%03X..0x%03X (%s=%d)", kind[3], bank, s, e, kind[2], dme or -1)
            if dme ~= 1 then fixable = false end
          end
        end
      end
      if #busy == 0 then return true, "none set" end
      return false, table.concat(busy, "; "), fixable and
        "an RDP 1 -> 0 regression removes them (DMEP/DMES = 1): recipes/recover/rdp_regression.lua" or
        "an area with DMEP/DMES = 0 survives a regression and cannot be removed over debug"
    end,
  },
  {
    name = "flash size", doc = "every F area lies in this chip's flash (its flash size register)",
    run = function (c)
      local ranges, out = chip_flash(c), {}
      for _, a in ipairs(f_areas(c)) do
        if not in_ranges(ranges, a.lo, a.hi) then out[#out + 1] = "area " .. a.index .. " " .. hexr(a.lo, a.hi) end
      end
      if #out == 0 then return true, string.format("%d KB present", c.info.flash_kb) end
      return false, string.format("%s beyond the %d KB this chip has", table.concat(out, ", "), c.info.flash_kb),
        "use a part with more flash, or rebuild the image for this one"
    end,
  },
  {
    name = "flash blank", doc = "the flash the image programs is erased (0xFF)",
    run = function (c)
      local dirty = {}
      for _, a in ipairs(f_areas(c)) do
        if in_ranges(chip_flash(c), a.lo, a.hi) then
          local got = c.p:read(a.lo, a.hi - a.lo)
          local at = got:find("[^\xFF]")
          if at then dirty[#dirty + 1] = string.format("0x%08X (area %d)", a.lo + at - 1, a.index) end
        end
      end
      if #dirty == 0 then return true, "erased" end
      return false, "programmed at " .. table.concat(dirty, ", "),
        "erase the flash first: an RDP 1 -> 0 regression does (recipes/recover/rdp_regression.lua)"
    end,
  },
  {
    name = "write protection", doc = "no sector the image programs is write-protected (nWRP)",
    run = function (c)
      local banks, bits = c.pack.memory.flash, {}
      for _, f in ipairs(c.pack.option_bytes.fields) do
        local i = f.name:match("^nWRP(%d+)$")
        if i then bits[#bits + 1] = math.tointeger(tonumber(i)) end
      end
      if #bits == 0 then return nil, "the pack lists no write-protection bits" end
      local per_bank = #bits // #banks
      local hit = {}
      for _, a in ipairs(f_areas(c)) do
        for b, bank in ipairs(banks) do
          local step = bank.size // per_bank
          for k = 0, per_bank - 1 do
            local lo = bank.start + k * step
            local n = (b - 1) * per_bank + k
            if a.lo < lo + step and a.hi > lo and c.ob["nWRP" .. n] == 0 then
              hit[#hit + 1] = string.format("nWRP%d (0x%08X)", n, lo)
            end
          end
        end
      end
      if #hit == 0 then return true, "not protected" end
      return false, table.concat(hit, ", ") .. " protected",
        "clear the protection: sfirun ob write --probe URI nWRPn=1 ..."
    end,
  },
  {
    name = "token page", doc = "the continuation-token page is erased or holds this image's progress",
    run = function (c)
      local s, slots = c.pack.sfi.token, c.pack.rss.token_slots
      local raw = c.p:read(s, 32 * slots)
      if not raw:find("[^\xFF]") then return true, string.format("0x%08X erased", s) end
      if c.start and c.start > 1 then
        return true, string.format("0x%08X holds this image's progress: resuming at part %d", s, c.start)
      end
      if c.token_record and c.token_record.same then return true, "holds this image's records" end
      return false, string.format("0x%08X holds data that is not this image's progress", s),
        "an RDP regression erases it (recipes/recover/unfinished_sfi.lua)"
    end,
  },
  {
    name = "bootloader", doc = "bootloader/RSS version against the pack's errata",
    run = function (c)
      local min = c.pack.sfi.min_bootloader
      if min and c.info.bl < min then
        local e = c.pack.errata and c.pack.errata[1]
        return c.o.allow_errata and true or false,
          string.format("bootloader 0x%02X < 0x%02X%s%s", c.info.bl, min, e and (": " .. e.id) or "",
            c.o.allow_errata and " (accepted: allow_errata)" or ""),
          string.format("use a chip with bootloader 0x%02X or later", min)
      end
      return true, string.format("bootloader 0x%02X", c.info.bl)
    end,
  },
  {
    name = "image format", doc = "protocol and hash as this chip's RSS takes them",
    run = function (c)
      local hi, rules = c.img:info(), c.rules
      local ok_proto = false
      for _, v in ipairs(rules.protocols) do ok_proto = ok_proto or v == hi.protocol end
      local d = string.format("protocol %d, hash %s; this RSS: protocols %s, hash %s", hi.protocol,
        hi.hashed and "on" or "off", table.concat(rules.protocols, "/"), rules.hash)
      if not ok_proto then return false, d, "rebuild the image with --protocol " .. rules.protocols[1] end
      if hi.hashed and rules.hash == "unsupported" then return false, d, "rebuild with --hash 0" end
      if not hi.hashed and rules.hash == "required" then return false, d, "rebuild with --hash 1" end
      return true, d
    end,
  },
  {
    name = "area types", doc = "every area type is one this RSS installs",
    run = function (c)
      local types = c.pack.sfi.area_types
      if not types then return nil, "the pack lists no area types" end
      local bad = {}
      for _, a in ipairs(c.img:areas()) do
        if not types:find(a.type, 1, true) then bad[#bad + 1] = a.index .. ":" .. a.type end
      end
      if #bad == 0 then return true, "types " .. types end
      return false, "areas " .. table.concat(bad, ", ") .. " are not in " .. types,
        "rebuild the image without those areas for this part"
    end,
  },
  {
    name = "ram size", doc = "each part fits the RAM the RSS reads",
    run = function (c)
      local room = c.pack.rss.ram_limit - c.pack.sfi.header_addr - #c.img:header_bytes()
      for i, part in ipairs(c.parts) do
        if part.bytes > room then
          return false, string.format("part %d is %d bytes, the device takes %d", i, part.bytes, room),
            "rebuild with a smaller --ramsize"
        end
      end
      return true, string.format("%d part(s), each <= %d bytes", #c.parts, room)
    end,
  },
  {
    name = "option-byte area", doc = "the image's C area suits this part (needs the key: development)",
    run = function (c)
      local l = c.o.licence or {}
      if l.kind ~= "keyfile" then
        return nil, "the C area is encrypted: only a development key (--set key=...) lets it be read"
      end
      local dec = c.img:decrypt(l.key, l.nonce)
      local carea
      for _, a in ipairs(dec) do if a.type == "C" then carea = a.data end end
      if not carea then return true, "no C area" end
      local optsr = string.unpack("<I4", carea, 1) -- row 1 is OPTSR (rss.ob_map[1] = 0x00)
      local function field(name)
        for _, f in ipairs(c.pack.option_bytes.fields) do
          if f.name == name and f.reg == 0 then return (optsr >> f.shift) & ((1 << f.bits) - 1), f end
        end
      end
      local rdp = field("RDP") or (optsr >> 8) & 0xFF
      local notes = { string.format("FOPTSR 0x%08X (RDP 0x%02X)", optsr, rdp) }
      local part = c.o.device and c.pack.parts[c.o.device] or (c.info.part and c.pack.parts[c.info.part])
      local bcm7, bcm4 = field("BCM7"), field("BCM4")
      if part and bcm7 then
        if part.dual_core and bcm7 == 0 and bcm4 == 0 then
          return false, notes[1] .. ": BCM7 = 0 and BCM4 = 0: neither core would boot",
            "rebuild the image with BCM7 or BCM4 set in FOPTSR_PRG"
        end -- single-core parts: bits 22/23 are reserved in RM0433 (ST's H75x example has 0)
      end
      if rdp == 0xCC then notes[#notes + 1] = "sets RDP level 2: final, debug is disabled for good" end
      return true, table.concat(notes, "; ")
    end,
  },
  {
    name = "target voltage", doc = "the target supply the probe measures",
    run = function (c)
      local ok, v = pcall(function () return c.p:voltage() end)
      if not ok or not v then return nil, "this probe does not measure it" end
      if v < 1.62 or v > 3.6 then
        return false, string.format("%.2f V", v), "the STM32H7 runs from 1.62 V to 3.6 V: check the supply"
      end
      return true, string.format("%.2f V", v)
    end,
  },
}

--- M.run(c) -> results {{name, status = "pass"|"fail"|"unknown", detail, fix}...}:
-- runs every check (reads only; transient probe errors retried). A check that raises is
-- "unknown" with the error as detail.
function M.run(c)
  local out = {}
  for _, chk in ipairs(M.CHECKS) do
    local ok, st, detail, fix = pcall(flow.retry, { tries = 3 }, chk.run, c)
    local status
    if not ok then status, detail, fix = "unknown", tostring(st), nil
    elseif st == true then status = "pass"
    elseif st == false then status = "fail"
    else status = "unknown" end
    out[#out + 1] = { name = chk.name, status = status, detail = detail, fix = fix, doc = chk.doc }
  end
  return out
end

return M
