--- sfi.ob: option bytes by name, driven by the device packs (pack.option_bytes). Reads the
-- 308-byte window, programs through OPTKEYR/OPTCR/OPTSTART like ST's tool (warning for fields
-- that would not change), verifies, and formats ST's grouped "OPTION BYTES BANK: 0" listing.
local errors = require "sfi.error"
local log = require "sfi.log"

local M = {}

local packs = setmetatable({}, { __mode = "k" })

-- The pack's option-byte control registers (absolute) and bits (pack.option_control).
local function control(pack)
  local c = pack.option_control
  if not c then
    errors.raise("UNSUPPORTED", "ob", pack.family .. ": the device pack has no option-byte control registers")
  end
  local base = pack.registers.flash
  return { optkeyr = base + c.optkeyr, optcr = base + c.optcr, optccr = base + c.optccr,
           lock = c.optlock, start = c.optstart, busy = c.opt_busy, changeerr = c.optchangeerr }
end

-- OPTLOCK cleared with the pack's key sequence; raises LOCKED (`why` says more) when it stays.
local function unlock(p, pack, k, op, why)
  if p:read32(k.optcr) & k.lock == 0 then return end
  p:write32(k.optkeyr, pack.flash_keys.optkey[1])
  p:write32(k.optkeyr, pack.flash_keys.optkey[2])
  if p:read32(k.optcr) & k.lock ~= 0 then
    errors.raise("LOCKED", op, "option bytes stay locked after the key sequence" .. (why or ""))
  end
end

local function mask(f) return ((1 << f.bits) - 1) << f.shift end

local function field_by_name(pack, name)
  for _, f in ipairs(pack.option_bytes.fields) do
    if f.name == name then return f end
  end
end

--- M.decode(pack, window) -> values: {NAME = integer} from the 308-byte window string.
function M.decode(pack, window)
  local v = {}
  for _, f in ipairs(pack.option_bytes.fields) do
    local w = string.unpack("<I4", window, f.reg + 1)
    v[f.name] = (w & mask(f)) >> f.shift
  end
  packs[v] = pack
  return v
end

local function read_window(p)
  local pack = p:device_pack()
  return pack, p:read(pack.option_bytes.window, pack.option_bytes.size)
end

--- M.read(p) -> values {NAME = integer} (current, *_CUR registers). Raises as p:read.
function M.read(p)
  local pack, win = read_window(p)
  return M.decode(pack, win)
end

--- M.read_prg(p) -> values {NAME = integer} of the PRG copies (what the next launch would
-- write). Raises as p:read.
function M.read_prg(p)
  local pack, win = read_window(p)
  local v = {}
  for _, f in ipairs(pack.option_bytes.fields) do
    local w = string.unpack("<I4", win, f.reg + 4 + 1)
    v[f.name] = (w & mask(f)) >> f.shift
  end
  return v
end

-- OPTSTART of what the PRG copies hold: clears OPTCHANGEERR (OPTCCR), starts, polls OPT_BUSY,
-- relocks. Raises TIMEOUT (OPT_BUSY stays set) or TARGET (OPTCHANGEERR), naming op; returns
-- the relock's pcall results (ok, err) for the caller to judge.
local function start(p, ob, k, op)
  p:write32(k.optccr, k.changeerr)
  p:write32(k.optcr, k.start)
  local sr
  for _ = 1, 10000 do
    sr = p:read32(ob.window)
    if sr & k.busy == 0 then break end
  end
  local ok, err = pcall(p.write32, p, k.optcr, k.lock)
  if sr & k.busy ~= 0 then errors.raise("TIMEOUT", op, "OPT_BUSY stays set") end
  if sr & k.changeerr ~= 0 then
    errors.raise("TARGET", op, "option change refused by the target (OPTCHANGEERR)")
  end
  return ok, err
end

--- M.launch(p, [keep_prg]) -> nothing: launches the PRG copies as they are (OPTSTART) or, with
-- keep_prg = false, first writes every PRG copy back to its CUR value (discarding pending
-- changes). Raises LOCKED (keys refused), TIMEOUT (OPT_BUSY stays set), TARGET.
function M.launch(p, keep_prg)
  local pack = p:device_pack()
  local ob, k = pack.option_bytes, control(pack)
  unlock(p, pack, k, "ob.launch")
  if keep_prg == false then
    local win = p:read(ob.window, ob.size)
    local seen = {}
    for _, f in ipairs(ob.fields) do
      if not seen[f.reg] then
        seen[f.reg] = true
        local cur = string.unpack("<I4", win, f.reg + 1)
        if f.reg == 0 then cur = cur & ~(k.busy | k.changeerr) end
        p:write32(ob.window + f.reg + 4, cur)
      end
    end
  end
  start(p, ob, k, "ob.launch") -- a relock that fails is left to the next unlock
end

--- M.meaning(pack, name, value) -> string: the meaning text (addresses for boot/area fields).
function M.meaning(pack, name, value)
  local f = assert(field_by_name(pack, name), "unknown option byte " .. tostring(name))
  if f.kind == "boot" then return string.format("0x%X", value << 16) end
  if f.kind == "start" or f.kind == "end" then
    local base = pack.memory.flash[f.bank].start
    return string.format("0x%X", base + (value << 8) + (f.kind == "end" and 0xFF or 0))
  end
  if f.values then return f.values[value] or f.other or "reserved" end
  return ""
end

--- M.for_part(p, values) -> values: the fields ST lists for the probe's part (a single-core
-- part such as the H753 has no BCM4: ST's listing for it shows none); a copy.
function M.for_part(p, values)
  local part = p.part and p:device_pack().parts[p.part]
  local single = part ~= nil and part.dual_core ~= true
  local out = {}
  for _, f in ipairs(p:device_pack().option_bytes.fields) do
    if values[f.name] ~= nil and not (single and f.dual_core) then out[f.name] = values[f.name] end
  end
  packs[out] = p:device_pack()
  return out
end

--- M.format(p_or_values, [pack]) -> string: ST's grouped listing ("OPTION BYTES BANK: 0"); with
-- a probe, the fields of its part only (M.for_part). Raises as p:read when given a probe.
function M.format(x, pack)
  local values = x
  if type(x) == "table" and x.device_pack then
    values = M.for_part(x, M.read(x))
    pack = pack or x:device_pack()
  end
  pack = pack or packs[values]
  assert(pack, "ob.format: pass the device pack with a plain values table")
  local out = { "OPTION BYTES BANK: 0" }
  local group
  for _, f in ipairs(pack.option_bytes.fields) do
    local v = values[f.name]
    if v ~= nil then
      if f.group ~= group then
        group = f.group
        out[#out + 1] = "   " .. group .. ":"
      end
      local addr = f.kind ~= nil
      out[#out + 1] = string.format("     %-13s: 0x%X%s(%s)", f.name, v, addr and "  " or " ",
        M.meaning(pack, f.name, v))
    end
  end
  return table.concat(out, "\n")
end

--- M.check(pack, set, opts) -> list of {field, value}: validates names, ranges, protected
-- fields and RDP level 2. Raises USAGE naming the field.
function M.check(pack, set, opts)
  opts = opts or {}
  local list = {}
  for name, value in pairs(set) do
    local f = field_by_name(pack, name)
    if not f then
      errors.raise("USAGE", "ob.program", string.format("unknown option byte '%s' for %s",
        tostring(name), pack.family))
    end
    if math.type(value) ~= "integer" or value < 0 or value > (1 << f.bits) - 1 then
      errors.raise("USAGE", "ob.program", string.format("%s: value %s out of range (0..0x%X)",
        name, tostring(value), (1 << f.bits) - 1))
    end
    if f.readonly then
      errors.raise("USAGE", "ob.program", string.format("%s cannot be written over debug: %s",
        name, f.readonly))
    end
    if name == "RDP" and value == 0xCC and not opts.force_irreversible then
      errors.raise("USAGE", "ob.program", "RDP=0xCC sets read-out protection level 2, which is " ..
        "irreversible: debug access is disabled for good and option bytes can never change " ..
        "again (use --force-irreversible / force_irreversible = true)")
    end
    list[#list + 1] = { f = f, value = value }
  end
  table.sort(list, function (a, b) return a.f.name < b.f.name end)
  return list
end

--- M.program(p, set, [opts]) -> boolean changed. Writes the named fields with the real
-- register sequence, then verifies the *_CUR registers. Unchanged fields are warned about
-- as ST's tool does; nothing at all to change -> false. Raises USAGE (bad field/value,
-- RDP 2 without opts.force_irreversible), LOCKED (option lock stays), TARGET (OPTCHANGEERR,
-- verify mismatch), and the probe's errors.
function M.program(p, set, opts)
  opts = opts or {}
  local pack = p:device_pack()
  local list = M.check(pack, set, opts)
  local ob = pack.option_bytes
  local win = p:read(ob.window, ob.size)
  local words, changed = {}, false
  for _, it in ipairs(list) do
    local f = it.f
    local w = words[f.reg] or string.unpack("<I4", win, f.reg + 1)
    local cur = (w & mask(f)) >> f.shift
    if cur == it.value then
      log.warn("Option Byte: %s, value: 0x%X, was not modified.", f.name, it.value)
    else
      changed = true
    end
    words[f.reg] = (w & ~mask(f)) | (it.value << f.shift)
  end
  if not changed then
    log.warn("Option Bytes are unchanged, Data won't be downloaded")
    return false
  end
  local k = control(pack)
  unlock(p, pack, k, "ob.program", " (a wrong key locks them until reset)")
  local regs = {}
  for reg in pairs(words) do regs[#regs + 1] = reg end
  table.sort(regs)
  for _, reg in ipairs(regs) do
    local v = words[reg]
    if reg == 0 then v = v & ~(k.busy | k.changeerr) end
    p:write32(ob.window + reg + 4, v)        -- the PRG copy
  end
  local ok, err = start(p, ob, k, "ob.program")
  if not ok then error(err, 0) end
  local now = M.read(p)
  for _, it in ipairs(list) do
    if now[it.f.name] ~= it.value then
      errors.raise("TARGET", "ob.program", string.format("verify failed: %s reads 0x%X, " ..
        "wanted 0x%X", it.f.name, now[it.f.name], it.value))
    end
  end
  log.info("Option Bytes successfully programmed")
  return true
end

--- M.fields(pack) -> the pack's field list (name, reg, shift, bits, group, values).
function M.fields(pack) return pack.option_bytes.fields end

return M
