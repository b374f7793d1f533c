--- sfi.probe: debug probes. Opens a probe from a URI or a table, connects to the target and
-- gives memory access, resets and core control. "sim:<part>" is the simulated STM32H7 built
-- from the device packs (vendor/st/*.lua); knobs come as URI query or table fields.
-- Failed commands raise an sfi.error (NO_DEVICE, LOCKED, TARGET, IO, TIMEOUT, ...).
local core = require "sfi.core.probe"
local device = require "sfi.device"
local errors = require "sfi.error"
local util = require "sfi.util"

local M = {}

--- M.CONNECT_MODES, M.RESET_KINDS: the connect modes and reset kinds every driver takes.
M.CONNECT_MODES = core.connect_modes
M.RESET_KINDS = core.reset_kinds
--- M.DEFAULT_PART: the part a bare "sim" URI simulates.
M.DEFAULT_PART = "stm32h753"

local KNOBS <const> = {
  bl = "int", rev = "rev", uid = "uid", state = "string", unreachable_after_reset = "int",
  -- a socket on a line: the chip in it has the UID written in FILE; no FILE, no chip (model)
  uid_file = "uid_file",
  unreachable_after_rss = "int", usb_error_every = "int", delay_ms = "int", power_loss_at = "int|name",
  flash_kb = "int", debug_disabled = "int", opt_busy_stuck = "int",
  -- a blank chip's option bytes by field name: ob=RDP:0xBB,nWRP0:0 (no effect on a state file);
  -- ob_prg= the same for the PRG copies only (changes written but never launched)
  ob = "ob", ob_prg = "ob",
  -- the simulated RSS (model): hash policy override, and rss=off for a chip without it
  hash = "rss", rss = "rss",
  -- the chip's own time from the pack's timing table (datasheet) or none; time_scale=0.01
  -- runs it at 1 % of real time
  timing = "timing", time_scale = "scale",
}
local HASH_POLICIES <const> = { unsupported = true, optional = true, required = true }
local POWER_EVENTS <const> = { erase = true, program = true, optstart = true, rss = true,
  reset = true }

local function bad(fmt, ...)
  errors.raise("USAGE", "probe.open", string.format(fmt, ...))
end

local function num(s, what)
  local v = util.parse_int(s, true)
  if v == nil then bad("knob '%s': '%s' is not a number", what, tostring(s)) end
  return v
end

--- M.STLINK_TCP_PORT: stlink-server's TCP port (the engine's SFI_STLINK_TCP_PORT): the port an
-- stlink-tcp URI without one means.
M.STLINK_TCP_PORT = core.STLINK_TCP_PORT

--- M.parse_uri(uri) -> {driver=, part=, serial=, port=, target=, faults={...}}. URIs:
-- "sim[:PART][?knobs]", "stlink[:SERIAL]" (USB), "stlink-tcp[:PORT[/SERIAL]]" (stlink-server on
-- 127.0.0.1, default port 7184; both ST-LINK ones take ?speed=KHZ and ?record=FILE, a capture
-- of the session), "gdb:HOST:PORT" or "gdb:/dev/ttyACM0" with ?dialect= (a GDB server:
-- sfi.gdb). Raises USAGE for a malformed URI.
function M.parse_uri(uri)
  if type(uri) ~= "string" then bad("probe URI must be a string") end
  local driver, rest = uri:match("^([%w%-]+):?(.*)$")
  if not driver then bad("malformed probe URI '%s'", uri) end
  local target, query = rest:match("^([^?]*)%??(.*)$")
  local out = { driver = driver, faults = {} }
  if driver == "sim" then
    if target == "" and uri:match("^sim:") then
      bad("'%s': a part after 'sim:' (e.g. sim:stm32h753), or plain 'sim' for the default", uri)
    end
    out.part = target ~= "" and target or nil
  elseif driver == "gdb" then
    out.target = target
  elseif driver == "stlink-tcp" then
    local port, serial = target:match("^(%d*)/(.+)$")
    if not port then port, serial = target:match("^(%d*)$"), "" end
    if not port then bad("malformed stlink-tcp URI '%s' (stlink-tcp[:PORT[/SERIAL]])", uri) end
    if port ~= "" then
      out.port = math.tointeger(tonumber(port))
      if not out.port or out.port < 1 or out.port > 65535 then
        bad("stlink-tcp port '%s' out of range in '%s'", port, uri)
      end
    end
    out.serial = serial ~= "" and serial or nil
  else
    out.serial = target ~= "" and target or nil
  end
  for kv in query:gmatch("[^&]+") do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if not k then bad("malformed URI parameter '%s' in '%s'", kv, uri) end
    out.faults[k] = v
  end
  return out
end

local function hex2bin(h, what)
  if not h:match("^%x+$") or #h % 2 ~= 0 then bad("%s: '%s' is not hex", what, h) end
  return (h:gsub("%x%x", function (b) return string.char(tonumber(b, 16)) end))
end

-- A state= path must be a file sfirun can replace: a regular file or nothing yet, in an
-- existing directory it may write (the chip is saved there when the probe closes).
local function check_state_path(path)
  if path == "" then bad("knob 'state' needs a file name") end
  local core_sfi = require "sfi.core"
  local kind = core_sfi.stat(path)
  if kind and kind ~= "file" then
    bad("knob 'state': '%s' is a %s, not a file", path, kind == "dir" and "directory" or kind)
  end
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  local dkind = core_sfi.stat(dir)
  if dkind ~= "dir" then
    bad("knob 'state': directory '%s' does not exist", dir)
  end
  local probe_file = path .. ".tmp.check"
  local f = io.open(probe_file, "wb")
  if not f then bad("knob 'state': cannot write in directory '%s'", dir) end
  f:close()
  os.remove(probe_file)
  return path
end

-- Builds the sfi.core.probe sim table from the pack, the part and the knobs.
local function simcfg(pack, part, knobs)
  for k in pairs(knobs) do
    if not KNOBS[k] then
      local names = {}
      for n in pairs(KNOBS) do names[#names + 1] = n end
      table.sort(names)
      bad("unknown sim knob '%s' (known: %s)", k, table.concat(names, ", "))
    end
  end
  local s = pack.sim
  if not s then bad("the simulator does not model %s (%s)", part.name, pack.family) end
  local c = {
    part = part.name, variant = s.variant, dev_id = pack.dev_id, rev_id = s.rev, idcode_res = s.idcode_res,
    cpuid = pack.cpuid, dpidr = pack.dpidr, flash_kb = part.flash_kb,
    banks = {}, sector_size = pack.memory.flash[1].sector, flash_word = pack.memory.flash_word,
    flash_regs = pack.registers.flash, idcode_addr = pack.registers.dbgmcu_idcode,
    fsize_addr = pack.registers.flash_size, uid_addr = pack.registers.uid,
    bl_addr = pack.registers.bl_version, ram = {}, sys_start = pack.memory.system.start,
    sys_size = pack.memory.system.size, bl = s.bl, ob_default = {},
    rss_mailbox = pack.rss.mailbox, rss_magic = pack.rss.magic, rss_result = pack.rss.result,
    cert_addr = pack.rss.cert, acr = s.acr_reset, regs = {},
  }
  for _, r in ipairs(s.peripherals or {}) do -- numbers only (names and sources stay in the pack)
    c.regs[#c.regs + 1] = { addr = r.addr, reset = r.reset, wmask = r.wmask or 0 }
  end
  for _, b in ipairs(pack.memory.flash) do c.banks[#c.banks + 1] = { start = b.start, size = b.size } end
  for _, r in ipairs(pack.memory.ram) do c.ram[#c.ram + 1] = { start = r.start, size = r.size } end
  for off, v in pairs(s.ob_default) do
    c.ob_default[off] = v
    c.ob_default[off + 4] = off == 0 and v & ~0x40000001 or v   -- PRG copy (OPTSR: no status bits)
  end
  -- A stable default UID derived from the part name (model).
  local uid = {}
  for i = 1, 12 do uid[i] = string.char((part.name:byte((i - 1) % #part.name + 1) * 7 + i) & 0xFF) end
  c.uid = table.concat(uid)
  local names = {}
  for k in pairs(knobs) do names[#names + 1] = k end
  table.sort(names) -- "ob" before "ob_prg"
  for _, k in ipairs(names) do
    local v, kind = knobs[k], KNOBS[k]
    if k == "rev" then
      local want = tostring(v)
      local id = math.tointeger(tonumber(want))
      if not id then
        for rid, letter in pairs(pack.revisions) do
          if letter:upper() == want:upper() then id = rid end
        end
      end
      if not id then bad("knob 'rev': unknown revision '%s' for %s", want, pack.family) end
      c.rev_id = id
    elseif k == "uid" then
      local u = #tostring(v) == 24 and hex2bin(tostring(v), "knob 'uid'") or nil
      if not u then bad("knob 'uid' must be 24 hex digits (96 bits)") end
      c.uid = u
    elseif k == "uid_file" then
      if not util.stat(tostring(v)) then
        errors.raise("NO_DEVICE", "probe.open", "sim: no chip in the socket (" .. tostring(v) ..
          " does not exist)")
      end
      -- a socket's UID file holds 24 hex digits and a newline; anything far larger is not one
      local hex = util.read_file(tostring(v), "knob 'uid_file'", 4096):match("^%s*(%x+)%s*$")
      if not hex or #hex ~= 24 then bad("knob 'uid_file': %s must hold 24 hex digits", v) end
      c.uid = hex2bin(hex, "knob 'uid_file'")
    elseif k == "state" then
      c.state = check_state_path(tostring(v))
    elseif kind == "rss" then
      if k == "hash" and not HASH_POLICIES[v] then
        bad("knob 'hash' must be unsupported, optional or required")
      elseif k == "rss" and v ~= "off" and v ~= "on" then
        bad("knob 'rss' must be on or off")
      end
    elseif kind == "ob" then
      for name, val in tostring(v):gmatch("([%w_]+):([%wxX]+)") do
        local f
        for _, fld in ipairs(pack.option_bytes.fields) do if fld.name == name then f = fld end end
        if not f then bad("knob '%s': %s has no option byte '%s'", k, pack.family, name) end
        local x = num(val, "knob '" .. k .. "' " .. name)
        local m = ((1 << f.bits) - 1) << f.shift
        if x < 0 or x > (1 << f.bits) - 1 then bad("knob 'ob': %s=%s out of range", name, val) end
        for _, off in ipairs(k == "ob" and { f.reg, f.reg + 4 } or { f.reg + 4 }) do
          c.ob_default[off] = ((c.ob_default[off] or 0) & ~m) | (x << f.shift)
        end
      end
    elseif kind == "timing" then
      if v == "datasheet" then
        if not pack.timing then bad("knob 'timing': %s has no timing table", pack.family) end
        local t = {}
        for name, x in pairs(pack.timing) do
          local base = name:match("^(.-)_ms$")
          if base then t[base .. "_us"] = math.floor(x * 1000 + 0.5)
          elseif name:match("_us$") then t[name] = x end
        end
        c.timing = t
      elseif v ~= "none" then
        bad("knob 'timing' must be datasheet or none, got '%s'", tostring(v))
      end
    elseif kind == "scale" then
      local x = tonumber(v)
      if not x or x <= 0 or x > 1000 then
        bad("knob 'time_scale' must be a number in (0, 1000], got '%s'", tostring(v))
      end
      c.time_scale = x
    elseif kind == "int|name" then
      if POWER_EVENTS[v] then c.power_loss_at = v else c.power_loss_at = num(v, k) end
    else
      c[k] = num(v, k)
    end
  end
  if c.bl > 0xFF then bad("knob 'bl' must fit one byte") end
  return c
end

-- The simulated RSS (sim/rss.c, model): the device pack's rss and sfi tables tell it where
-- the licence, header and token are, which protocols and hash policy the ROM has, and its
-- result codes. The chip gets its identity (key pair, certificate by the simulator CA) here.
local function attach_rss(p, sim, knobs)
  local pack = p.pack
  local host = package.loaded["sfi.core.host"]
  local root = host and host.root or "."
  local pem = util.read_file(root .. "/vendor/sim/ca-key.pem", "simulator CA key", 64 * 1024)
  local rss, sfi = pack.rss, pack.sfi
  local corrupt = sfi.min_bootloader ~= nil and sim.bl < sfi.min_bootloader
  p._rss = require("sfi.core.rss").attach(p._u, {
    license_addr = sfi.license_addr, header_addr = sfi.header_addr, ram_limit = rss.ram_limit,
    token_addr = sfi.token, token_slots = rss.token_slots, protocols = sfi.protocols,
    hash = knobs.hash or (sfi.hash == "unsupported" and "unsupported") or
      (sfi.hash == "required" and "required") or "optional",
    corrupt = corrupt, ob_map = rss.ob_map, codes = rss.codes,
    ca_key_pem = pem, product_id = sfi.product_id,
  })
end

local P = {}
P.__index = P
P.__name = "sfi.probe"

--- M.open(opts) -> probe. opts: {uri=, connect=, reset=, speed_khz=, no_connect=} (no_connect:
-- open without connecting, for a server in front of a chip) or {driver="sim"|"stlink"|
-- "stlink-tcp", part=, serial=, port=, faults={...}}. Raises USAGE (bad URI/knob), NOT_FOUND (unknown part/driver),
-- NO_DEVICE (target silent), IO, FORMAT (corrupt state file).
function M.open(opts)
  if type(opts) == "string" then opts = { uri = opts } end
  if type(opts) ~= "table" then error("probe.open expects a table or a URI string", 2) end
  local spec = opts.uri and M.parse_uri(opts.uri) or
    { driver = opts.driver or "sim", part = opts.part, serial = opts.serial, faults = {} }
  for k, v in pairs(opts.faults or {}) do spec.faults[k] = v end
  local cfg = { driver = spec.driver, serial = spec.serial, port = spec.port or opts.port,
    speed_khz = opts.speed_khz, connect = opts.connect or "normal", no_connect = opts.no_connect }
  if spec.driver == "gdb" then
    local khz
    cfg.gdb, khz = require("sfi.gdb").parse(spec.target or "", spec.faults)
    cfg.speed_khz = cfg.speed_khz or khz
  elseif spec.driver ~= "sim" then
    for k, v in pairs(spec.faults) do
      if k == "record" then
        -- record=FILE: the session is written to a capture (docs/learning-from-captures.md)
        if v == "" then bad("probe URI parameter 'record' needs a file name") end
        cfg.record = v
      elseif k ~= "speed" then
        bad("probe URI parameter '%s' applies to sim: probes only", k)
      else
        cfg.speed_khz = num(v, "speed")
      end
    end
  end
  local pack, part
  if spec.driver == "sim" then
    pack, part = device.find_part(spec.part or M.DEFAULT_PART)
    if spec.faults.flash_kb then
      local kb = num(spec.faults.flash_kb, "flash_kb")
      local max = 0
      for _, b in ipairs(pack.memory.flash) do max = max + b.size end
      max = max // 1024
      if kb < 1 or kb > max then
        bad("knob 'flash_kb' must be 1..%d for %s, got %d", max, pack.family, kb)
      end
      local copy = {}
      for k, v in pairs(part) do copy[k] = v end -- the pack's own table stays as it is
      copy.flash_kb = kb
      part = copy
    end
    cfg.sim = simcfg(pack, part, spec.faults)
  end
  do -- the pack's read-out protection (the RDP field's level-0 value `open`, the flash banks):
    -- bus faults on protected flash become LOCKED in C (cfg.rdp). A real probe has not read the
    -- chip yet: the URI's part, or the default part, is used
    local ok, rp = pcall(device.find_part, spec.part or M.DEFAULT_PART)
    rp = pack or (ok and rp or nil)
    local ob = rp and rp.option_bytes
    for _, f in ipairs(ob and ob.fields or {}) do
      if f.name == "RDP" then
        local r = { reg = ob.window + f.reg, shift = f.shift, bits = f.bits, open = f.open }
        for _, b in ipairs(rp.memory.flash) do
          r.flash_lo = math.min(r.flash_lo or b.start, b.start)
          r.flash_hi = math.max(r.flash_hi or 0, b.start + b.size)
        end
        if r.open then cfg.rdp = r end
      end
    end
  end
  local u = core.open(cfg)
  local p = setmetatable({ _u = u, pack = pack, part = part and part.name, driver = spec.driver },
    P)
  if spec.driver == "sim" and pack.rss and spec.faults.rss ~= "off" then
    local ok, err = pcall(attach_rss, p, cfg.sim, spec.faults)
    if not ok then u:close(); error(err, 0) end
  end
  if opts.reset then
    local ok, err = pcall(u.reset, u, opts.reset)
    if not ok then u:close(); error(err, 0) end
  end
  return p
end

--- M.list() -> { {driver, serial, desc}... }: probes the drivers can see (never raises).
function M.list() return core.list() end

--- p:close(): idempotent; also the __close / __gc action.
function P:close()
  self._u:close()
  if self._rss then self._rss:close() end
end

--- p:rss_last() -> code name, text | nil: what the simulated RSS did last (sim only).
function P:rss_last()
  if self._rss then return self._rss:last() end
end
P.__close = P.close
function P:__tostring() return tostring(self._u) end

--- p:read(addr, n) -> string. Raises NO_DEVICE, LOCKED, TARGET, IO.
function P:read(addr, n) return self._u:read(addr, n) end
--- p:write(addr, s). Raises as read.
function P:write(addr, s) return self._u:write(addr, s) end
--- p:read8/16/32(addr) -> integer; p:write8/16/32(addr, v). Raise as read.
function P:read32(addr) return self._u:read32(addr) end
function P:write32(addr, v) return self._u:write32(addr, v) end
function P:read16(addr) return (string.unpack("<I2", self._u:read(addr, 2))) end
function P:write16(addr, v) return self._u:write(addr, string.pack("<I2", v)) end
function P:read8(addr) return (string.unpack("B", self._u:read(addr, 1))) end
function P:write8(addr, v) return self._u:write(addr, string.pack("B", v)) end
--- p:reset([kind]) kind "sw" (default) | "hw" | "core". Raises NO_DEVICE, IO.
function P:reset(kind) return self._u:reset(kind) end
--- p:halt(), p:resume(). Raise NO_DEVICE, TIMEOUT, IO.
function P:halt() return self._u:halt() end
function P:resume() return self._u:resume() end
--- p:connected() -> boolean
function P:connected() return self._u:connected() end
--- p:sim_ops() -> integer | nil: debug operations counted by the simulated chip.
function P:sim_ops() return self._u:sim_ops() end
--- p:sim_chip_ms() -> number | nil: the chip time the simulator's timing model charged.
function P:sim_chip_ms() return self._u:sim_chip_ms() end

--- p:voltage() -> volts | nil: the target supply, when the probe measures it.
function P:voltage()
  if self._u.voltage then return self._u:voltage() end
  return nil
end

-- The pack of a target opened without one, from its DEV_ID. Raises NOT_FOUND for another.
local function detect(self)
  local dev_id, pack = device.read_dev_id(function (a) return self._u:read32(a) end)
  return pack or device.by_devid(dev_id)
end

--- p:ping() -> dev_id: reads the DBGMCU ID: the target answers. Raises NO_DEVICE, IO, TIMEOUT.
function P:ping()
  local read32 = function (a) return self._u:read32(a) end
  if not self.pack then return (device.read_dev_id(read32)) end
  return read32(self.pack.registers.dbgmcu_idcode) & 0xFFF
end

--- p:reconnect{connect=, reset=}: connects again (after reset, RSS, power loss), then resets
-- if asked ("none": no reset) and then connects once more in hotplug mode (a reset reboots
-- the chip and may drop the link without the probe knowing). It has reconnected only when a
-- read of the target succeeds afterwards. Raises NO_DEVICE while the target stays silent.
function P:reconnect(opts)
  opts = opts or {}
  self._u:connect(opts.connect or "normal")
  if opts.reset and opts.reset ~= "none" then
    self._u:reset(opts.reset)
    self._u:connect("hotplug")
  end
  self:ping()
end

--- p:info() -> {dev_id, rev, rev_id, flash_kb, bl, uid, part, family, probe}: read from the
-- target's ID registers. Raises as read; NOT_FOUND for an unknown DEV_ID.
function P:info()
  local pack = self.pack or detect(self)
  local id = self._u:read32(pack.registers.dbgmcu_idcode)
  local dev_id, rev_id = id & 0xFFF, id >> 16
  if dev_id ~= pack.dev_id then pack = device.by_devid(dev_id) end
  local r = pack.registers
  local uid = self._u:read(r.uid, 12)
  return {
    dev_id = dev_id, rev_id = rev_id, rev = pack.revisions[rev_id] or string.format("0x%04X", rev_id),
    flash_kb = string.unpack("<I2", self._u:read(r.flash_size, 2)),
    bl = string.unpack("B", self._u:read(r.bl_version, 1)),
    uid = (uid:gsub(".", function (c) return string.format("%02X", c:byte()) end)),
    part = self.part, family = pack.family, probe = self.driver,
  }
end

--- p:pack() -> the device pack of the connected target.
function P:device_pack()
  if not self.pack then self.pack = detect(self) end
  return self.pack
end

return M
