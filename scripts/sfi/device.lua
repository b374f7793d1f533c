--- sfi.device: loads device packs (vendor/st/*.lua), data tables describing a family.
-- Packs are found by family file, by part name ("stm32h753") or by DEV_ID (0x450).
local errors = require "sfi.error"

local M = {}

--- M.families: the pack modules known to this build, by DEV_ID.
M.families = {
  [0x450] = "st.stm32h74x_75x",
  [0x480] = "st.stm32h7ab",
  [0x483] = "st.stm32h72x_73x",
  [0x484] = "st.stm32h5",
}

--- M.by_devid(dev_id) -> pack. Raises NOT_FOUND for an unknown DEV_ID.
function M.by_devid(dev_id)
  local mod = M.families[dev_id]
  if not mod then
    errors.raise("NOT_FOUND", "device", string.format("no device pack for DEV_ID 0x%03X", dev_id))
  end
  return require(mod)
end

--- M.idcode_addresses([all]) -> the DBGMCU_IDCODE addresses of the known packs, ascending
-- (`registers.dbgmcu_idcode`; with all, also the debug-port alias `dbgmcu_idcode_apbd`): where
-- a DEV_ID is read before the device is known.
function M.idcode_addresses(all)
  local seen, out = {}, {}
  for _, mod in pairs(M.families) do
    local r = require(mod).registers
    for _, a in ipairs { r.dbgmcu_idcode, all and r.dbgmcu_idcode_apbd or nil } do
      if not seen[a] then seen[a], out[#out + 1] = true, a end
    end
  end
  table.sort(out)
  return out
end

--- M.read_dev_id(read32) -> dev_id, pack|nil: the DEV_ID of a target whose device is not known
-- yet, read with read32(addr) at the packs' DBGMCU_IDCODE addresses (the first that names a
-- known device; else the last value read). Raises what read32 raises.
function M.read_dev_id(read32)
  local dev_id
  for _, a in ipairs(M.idcode_addresses()) do
    dev_id = read32(a) & 0xFFF
    if M.families[dev_id] then return dev_id, M.by_devid(dev_id) end
  end
  return dev_id, nil
end

--- M.find_part(name) -> pack, part. name is case-insensitive ("STM32H753", "stm32h7b3").
-- Raises NOT_FOUND naming the known parts.
function M.find_part(name)
  local want = tostring(name):lower()
  local known = {}
  for _, mod in pairs(M.families) do
    local pack = require(mod)
    for pname, part in pairs(pack.parts) do
      if pname == want then
        local p = { name = pname }
        for k, v in pairs(part) do p[k] = v end
        return pack, p
      end
      known[#known + 1] = pname
    end
  end
  table.sort(known)
  errors.raise("NOT_FOUND", "device", string.format("unknown part '%s' (known: %s)", name,
    table.concat(known, ", ")))
end

--- M.flash_ranges(pack, flash_kb) -> { {start, size, name}... } for a part's flash size.
function M.flash_ranges(pack, flash_kb)
  local total = (flash_kb or 0) * 1024
  local out = {}
  for _, b in ipairs(pack.memory.flash) do
    if total <= 0 then break end
    local size = math.min(b.size, total)
    out[#out + 1] = { name = b.name, start = b.start, size = size }
    total = total - size
  end
  return out
end

--- M.region(pack, addr) -> "flash" | "ram" | "system" | nil, name: which memory of the
-- device pack holds addr (name: the bank or RAM block).
function M.region(pack, addr)
  for _, b in ipairs(pack.memory.flash) do
    if addr >= b.start and addr < b.start + b.size then return "flash", b.name end
  end
  for _, b in ipairs(pack.memory.ram) do
    if addr >= b.start and addr < b.start + b.size then return "ram", b.name end
  end
  local sys = pack.memory.system
  if sys and addr >= sys.start and addr < sys.start + sys.size then return "system", "system" end
  return nil
end

return M
