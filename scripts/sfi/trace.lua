--- sfi.trace: ST-LINK traffic captures as debug operations. Reads a pcap/pcapng capture
-- (stlink-server TCP or ST-LINK USB traffic) through sfi.core.trace, turns its ST-LINK
-- commands into operations (connect, speed, reset, memory, registers, DP/AP, errors), names
-- addresses from the device packs (vendor/st register_names, the SFI and RSS addresses,
-- vendor/arm/armv7m.lua), merges bulk transfers and collapses polling repeats; and compares
-- two traces (M.diff). Raises NOT_FOUND / ACCESS / FORMAT (sfi.error) for unreadable input.
local core = require "sfi.core.trace"
local device = require "sfi.device"

local M = {}

local ARM <const> = require "arm.armv7m"
local IDCODE <const> = {} -- where a read names the device (both DBGMCU views)
for _, a in ipairs(device.idcode_addresses(true)) do IDCODE[a] = true end
local HOLD_MAX <const> = 4096          -- operations held back until the device is known
local MODES <const> = { [0] = "DFU", "MASS", "DEBUG", "SWIM", "BOOTLOADER" }
local NRST <const> = { [0] = "low", "high", "pulse" }
local ENTER <const> = { [0xA3] = "SWD", [0xA4] = "JTAG", [0x00] = "JTAG with reset" }
local SERVER_STATUS <const> = { [1] = "OK", [0x1000] = "MEMORY", [0x1001] = "TIMEOUT",
  [0x1002] = "BAD_PARAM", [0x1003] = "OPEN_ERR", [0x1052] = "TRUNCATED", [0x1053] = "CMD_NOT_AVAILABLE",
  [0x2001] = "TCP_ERROR", [0x2002] = "TCP_CANT_CONNECT", [0x2003] = "TCP_CLOSE_ERR",
  [0x2004] = "TCP_BUSY", [0x10000] = "WIN32" }

--- M.names(pack) -> names: address -> register name for a device pack (nil: Cortex-M only).
function M.names(pack)
  local n = {}
  for a, v in pairs(ARM.register_names) do n[a] = v end
  if pack then
    for a, v in pairs(pack.register_names or {}) do n[a] = v end
    local r = pack.registers or {}
    if r.dbgmcu_idcode then n[r.dbgmcu_idcode] = "DBGMCU_IDCODE" end
    if r.flash_size then n[r.flash_size] = "FLASH_SIZE" end
    if r.uid then n[r.uid] = "UID" end
    if r.bl_version then n[r.bl_version] = "BL_VERSION" end
    local s = pack.sfi or {}
    if s.license_addr then n[s.license_addr] = "SFI_LICENCE" end
    if s.header_addr then n[s.header_addr] = "SFI_HEADER" end
    local rss = pack.rss or {}
    if rss.mailbox then n[rss.mailbox] = "RSS_MAILBOX" end
    if rss.result then n[rss.result] = "RSS_RESULT" end
    if rss.cert then n[rss.cert] = "CHIP_CERTIFICATE" end
  end
  return n
end

local function hx(v) return string.format("0x%08X", v) end

-- The name of an address: a register, else the memory region and offset (bulk transfers).
local function name_of(names, pack, addr, len)
  if names[addr] then return names[addr] end
  if pack and len and len > 4 then
    local kind, region = device.region(pack, addr)
    if kind then
      local base
      for _, b in ipairs(kind == "flash" and pack.memory.flash or pack.memory.ram or {}) do
        if b.name == region then base = b.start end
      end
      if base and addr ~= base then return string.format("%s+0x%X", region, addr - base) end
      return region or kind
    end
  end
  return nil
end

-- ---- records to operations -------------------------------------------------------------

local function u32(s, i) return (string.unpack("<I4", s, i)) end

-- A stlink-server request as text.
local function server_text(r)
  local req, rep = r.req or "", r.rep
  local st = r.server_status and r.server_status ~= 1 and
    string.format(" -> %s (0x%X)", SERVER_STATUS[r.server_status] or "error", r.server_status) or ""
  if not rep then return r.name .. " (no reply)" end
  if r.name == "GET_SERVER_VERSION" and #rep >= 16 then
    return string.format("GET_SERVER_VERSION -> API v%d, version %d.%d.%d", u32(rep, 1), u32(rep, 5),
      u32(rep, 9), u32(rep, 13))
  elseif r.name == "GET_NB_DEV" and #rep >= 4 then
    return string.format("GET_NB_DEV -> %d device(s)", u32(rep, 1))
  elseif r.name == "GET_DEV_INFO" and #rep >= 45 and #st == 0 then
    local serial = rep:sub(9, 40):gsub("%z.*$", "")
    return string.format("GET_DEV_INFO %d -> %s %04X:%04X%s", req:byte(2), serial,
      string.unpack("<I2", rep, 41), string.unpack("<I2", rep, 43), rep:byte(45) ~= 0 and " (in use)" or "")
  elseif r.name == "OPEN_DEV" and #rep >= 8 and #req >= 8 then
    return string.format("OPEN_DEV device %d -> connection %d%s", u32(req, 5), u32(rep, 5), st)
  end
  return r.name .. st
end

local function dap_name(r)
  local reg = r.addr or 0
  if r.ap == 0xFFFF then
    local t = r.op == "read_dap" and ARM.dp_registers.read or ARM.dp_registers.write
    return string.format("DP %s", t[reg & 0xF] or string.format("0x%X", reg))
  end
  return string.format("AP%d %s", r.ap, ARM.ap_registers[reg & 0xFF] or string.format("0x%X", reg))
end

local function version_text(r)
  local d = r.data or ""
  if r.name == "GET_VERSION" and #d >= 6 then
    local w = (d:byte(1) << 8) | d:byte(2)
    return string.format("ST-LINK V%d J%d (%04X:%04X)", w >> 12, (w >> 6) & 63,
      string.unpack("<I2", d, 3), string.unpack("<I2", d, 5))
  elseif #d >= 12 then
    return string.format("ST-LINK V%dJ%dS%d (%04X:%04X)", d:byte(1), d:byte(3), d:byte(2),
      string.unpack("<I2", d, 9), string.unpack("<I2", d, 11))
  end
  return r.name
end

-- One record -> an operation {op=, ...} (or a status to fold into the previous one).
local function to_op(r)
  local o = { frame = r.frame, t = r.t, stream = r.stream, via = r.via, cmd = r.name, cmds = 1 }
  if r.kind == "gap" then
    o.op, o.bytes, o.to_server = "gap", r.bytes, r.to_server
    return o
  elseif r.kind == "note" then
    o.op, o.text = "note", r.text
    return o
  elseif r.kind == "server" then
    o.op, o.text = "server", server_text(r)
    if r.server_status and r.server_status ~= 1 then
      o.error = SERVER_STATUS[r.server_status] or string.format("0x%X", r.server_status)
    end
    return o
  end
  local op = r.op
  if r.server_status and r.server_status ~= 1 then
    o.error = "stlink-server " .. (SERVER_STATUS[r.server_status] or string.format("0x%X", r.server_status))
  elseif r.usb_status then
    o.error = string.format("USB status %d", r.usb_status)
  elseif r.status and r.status ~= 0x80 and op ~= "mode" and op ~= "version" then
    o.error = r.status_name or string.format("status 0x%02X", r.status)
  end
  if not r.replied then o.noreply = true end
  if op == "read_mem" or op == "write_mem" or op == "read_dbg" or op == "write_dbg" then
    o.op = (op == "read_mem" or op == "read_dbg") and "read" or "write"
    o.addr, o.len, o.width = r.addr, r.len or 4, r.width or 32
    if op == "read_dbg" or op == "write_dbg" then o.len = 4 end
    if r.ap and r.ap ~= 0 then o.ap = r.ap end
    o.fixed = r.fixed_addr == 1 or nil
    o.data = r.data
    if o.op == "read" and r.width == 8 and o.len == 1 and o.data then o.data = o.data:sub(1, 1) end
    if o.len <= 4 then o.value = r.value end
    if o.op == "read" and not r.replied then o.value = nil end
  elseif op == "rw_status" then
    o.op = "rw_status"
  elseif op == "read_reg" or op == "write_reg" then
    o.op, o.reg, o.value = op, r.addr, r.value
  elseif op == "read_dap" or op == "write_dap" then
    o.op, o.reg, o.ap, o.value = op, r.addr, r.ap, r.value
  elseif op == "version" then
    o.op, o.text = "version", version_text(r)
  elseif op == "mode" then
    o.op, o.text = "mode", "mode " .. (MODES[r.value] or tostring(r.value))
  elseif op == "leave" then
    o.op, o.text = "leave", r.name == "DFU_EXIT" and "leave DFU mode" or "leave debug mode"
  elseif op == "enter" then
    o.op, o.text = "connect", "enter " .. (ENTER[r.value] or string.format("mode 0x%02X", r.value or 0))
  elseif op == "voltage" then
    o.op, o.text = "voltage", r.value and string.format("target %.2f V", r.value / 1000) or "target voltage"
  elseif op == "speed" then
    o.op = "speed"
    o.text = r.name == "APIV3_SET_COM_FREQ" and string.format("speed %s %d kHz", r.ap == 1 and "JTAG" or "SWD", r.value)
      or string.format("speed %s divisor %d", r.name == "JTAG_SET_FREQ" and "JTAG" or "SWD", r.value or 0)
  elseif op == "speeds" then
    local d, t = r.data or "", {}
    if #d >= 12 then
      for i = 0, math.min(d:byte(9), 10) - 1 do
        if #d >= 16 + 4 * i then t[#t + 1] = tostring(u32(d, 13 + 4 * i)) end
      end
    end
    o.op, o.text = "speeds", "speeds " .. table.concat(t, "/") .. " kHz"
  elseif op == "idcode" then
    o.op, o.value = "idcode", r.value
  elseif op == "reset" then
    o.op, o.text = "reset", "system reset (APIV2_RESETSYS)"
  elseif op == "nrst" then
    o.op, o.text = "nrst", "NRST " .. (NRST[r.value] or tostring(r.value))
  elseif op == "ap" then
    o.op, o.text = "ap", string.format("%s %d", r.name, r.value or 0)
  else
    o.op, o.text = "other", r.name
  end
  return o
end

-- Bulk: contiguous transfers of the same direction, started by one of more than 4 bytes.
local function mergeable(a, b)
  return a and b and a.op == b.op and (a.op == "read" or a.op == "write") and a.stream == b.stream and
    not a.error and not b.error and not a.noreply and not b.noreply and not a.fixed and not b.fixed and
    (a.len > 4) and b.addr == a.addr + a.len and (a.ap or 0) == (b.ap or 0)
end

local function same(a, b)
  if not (a and b) then return false end
  for _, k in ipairs { "op", "stream", "addr", "len", "value", "reg", "ap", "text", "error", "cmd",
    "sha256", "bytes" } do
    if a[k] ~= b[k] then return false end
  end
  return a.op ~= "gap" and a.op ~= "note"
end

--- M.reader(path, opts) -> iterator yielding operations, and the reader's stats function.
-- opts: {port=, all=, pack=PART|pack table}. Operations: {op, frame, t, stream, via, cmd,
-- addr, len, width, value, name, reg, ap, text, error, noreply, repeat, cmds, sha256}.
-- Raises FORMAT when the file is damaged (after yielding what came before).
function M.reader(path, opts)
  opts = opts or {}
  -- a FIFO or device is refused before libpcap opens it (it would block or read forever);
  -- a capture is streamed, so its size is bounded only by the file system
  require("sfi.util").check_file(path, "capture", math.maxinteger)
  local r = core.open(path, { port = opts.port, all = opts.all })
  local pack = opts.pack
  if type(pack) == "string" then pack = (device.find_part(pack)) end
  local names = M.names(pack)
  local detected = pack ~= nil
  local held = {}        -- named operations waiting for the device (FIFO)
  local out = {}         -- ready to yield
  local cur              -- the operation being built (merging, repeats)
  local done = false

  local function finish(o)
    if o.data and o.len and o.len > 4 then
      o.sha256 = core.sha256(o.data)
    end
    o.data = nil
    return o
  end
  local function name(o)
    if o.addr and (o.op == "read" or o.op == "write") then o.name = name_of(names, pack, o.addr, o.len) end
    if o.op == "read_reg" or o.op == "write_reg" then o.name = ARM.core_registers[o.reg] end
    if o.op == "read_dap" or o.op == "write_dap" then o.name = dap_name(o) end
    return o
  end
  local function detect(o)
    if detected or o.op ~= "read" or not o.value then return end
    if IDCODE[o.addr] then
      local ok, p = pcall(device.by_devid, o.value & 0xFFF)
      if ok then
        pack, names, detected = p, M.names(p), true
        M.last_pack = p
        for _, h in ipairs(held) do name(h); out[#out + 1] = h end
        held = {}
      end
    end
  end
  local function ready(o)
    finish(o)
    if detected then
      out[#out + 1] = name(o)
    else
      held[#held + 1] = o
      detect(o)
      if #held > HOLD_MAX then
        detected = true
        for _, h in ipairs(held) do name(h); out[#out + 1] = h end
        held = {}
      end
    end
  end
  local function push(o)
    if o.op == "rw_status" then
      -- the status of the memory command before it
      if cur and (cur.op == "read" or cur.op == "write") then
        cur.cmds = cur.cmds + 1
        if o.error then cur.error = o.error end
        if o.noreply then cur.noreply = true end
        return
      end
      o.op, o.text = "other", o.cmd
    end
    if mergeable(cur, o) and (cur["repeat"] or 1) == 1 then
      cur.len = cur.len + o.len
      cur.data = (cur.data or "") .. (o.data or "")
      cur.value = nil
      cur.cmds = cur.cmds + o.cmds
      return
    end
    if cur then finish(cur) end
    if cur and cur.sha256 and o.data and o.len and o.len > 4 then o.sha256 = core.sha256(o.data) end
    if same(cur, o) then
      cur["repeat"] = (cur["repeat"] or 1) + 1
      cur.cmds = cur.cmds + o.cmds
      return
    end
    if cur then ready(cur) end
    cur = o
  end
  local function fill()
    while #out == 0 and not done do
      local rec = r:next()
      if not rec then
        done = true
        if cur then ready(finish(cur)); cur = nil end
        for _, h in ipairs(held) do name(h); out[#out + 1] = h end
        held = {}
      else
        push(to_op(rec))
      end
    end
  end
  local idx = 0
  local function iter()
    if idx >= #out then
      out, idx = {}, 0
      local ok, err = pcall(fill)
      if not ok then
        -- hand out what came before the damage, then raise
        if cur then ready(finish(cur)); cur = nil end
        for _, h in ipairs(held) do name(h); out[#out + 1] = h end
        held = {}
        if #out == 0 then r:close(); error(err, 0) end
        local pending = err
        fill = function () done = true; error(pending, 0) end
      end
      if #out == 0 then return nil end
    end
    idx = idx + 1
    return out[idx]
  end
  local function stats()
    local s = r:stats()
    s.pack = pack
    return s
  end
  return iter, stats, r
end

--- M.format(o) -> one human line for an operation.
function M.format(o)
  local body
  local nm = o.name and (" " .. o.name) or ""
  if o.op == "read" or o.op == "write" then
    local arrow = o.op == "read" and " =" or " <-"
    if o.len <= 4 and o.value then
      local w = o.len == 1 and "%02X" or o.len == 2 and "%04X" or "%08X"
      body = string.format("%-6s %s%s%s 0x" .. w, o.op .. (o.len * 8), hx(o.addr), nm, arrow, o.value)
    elseif o.len <= 4 then
      body = string.format("%-6s %s%s", o.op .. (o.len * 8), hx(o.addr), nm)
    else
      body = string.format("%-6s %s%s %d bytes sha256 %s (%d command%s)", o.op, hx(o.addr), nm, o.len,
        o.sha256 and o.sha256:sub(1, 16) or "?", o.cmds, o.cmds == 1 and "" or "s")
    end
    if o.ap then body = body .. string.format(" [AP%d]", o.ap) end
  elseif o.op == "read_reg" or o.op == "write_reg" then
    body = string.format("%-6s %s%s", o.op == "read_reg" and "getreg" or "setreg",
      o.name or string.format("reg 0x%02X", o.reg),
      o.value and string.format(o.op == "read_reg" and " = 0x%08X" or " <- 0x%08X", o.value) or "")
  elseif o.op == "read_dap" or o.op == "write_dap" then
    body = string.format("%-6s %s%s", o.op == "read_dap" and "rddap" or "wrdap", o.name,
      o.value and string.format(o.op == "read_dap" and " = 0x%08X" or " <- 0x%08X", o.value) or "")
  elseif o.op == "idcode" then
    body = string.format("%-6s DPIDR = %s", "idcode", o.value and hx(o.value) or "?")
  elseif o.op == "gap" then
    return string.format("%7d %10.6f  GAP    %d bytes lost (%s); resynchronising", o.frame, o.t,
      o.bytes, o.to_server and "host to probe" or "probe to host")
  elseif o.op == "note" then
    body = "note   " .. o.text
  elseif o.op == "server" then
    body = "server " .. o.text
  else
    body = o.text or o.cmd or o.op
  end
  if o.error then body = body .. " -> " .. o.error end
  if o.noreply then body = body .. " (no reply)" end
  if (o["repeat"] or 1) > 1 then body = body .. string.format("  x%d", o["repeat"]) end
  return string.format("%7d %10.6f  %s", o.frame, o.t, body)
end

--- M.json_op(o) -> table with the stable JSON keys of an operation.
function M.json_op(o)
  return { frame = o.frame, t = o.t, stream = o.stream, via = o.via, op = o.op, cmd = o.cmd,
    addr = o.addr, len = o.len, width = o.width, value = o.value, name = o.name, reg = o.reg,
    ap = o.ap, text = o.text, error = o.error, noreply = o.noreply, ["repeat"] = o["repeat"] or 1,
    cmds = o.cmds, sha256 = o.sha256, bytes = o.bytes }
end

-- ---- diff -----------------------------------------------------------------------------------

-- The comparison key of an operation: timing, repeats and read values never count; bulk
-- transfers compare by length (and content with data = true).
local function key(o, data)
  if o.op == "note" then return nil end
  local k = { o.op }
  if o.op == "read" or o.op == "write" then
    k[#k + 1] = hx(o.addr)
    k[#k + 1] = tostring(o.len)
    if o.op == "write" and o.len <= 4 then k[#k + 1] = tostring(o.value) end
    if data and o.len > 4 then k[#k + 1] = o.sha256 end
  elseif o.op == "write_reg" or o.op == "write_dap" then
    k[#k + 1] = tostring(o.reg); k[#k + 1] = tostring(o.ap); k[#k + 1] = tostring(o.value)
  elseif o.op == "read_reg" or o.op == "read_dap" then
    k[#k + 1] = tostring(o.reg); k[#k + 1] = tostring(o.ap)
  elseif o.op == "server" or o.op == "version" or o.op == "voltage" or o.op == "mode" then
    k[#k + 1] = o.cmd
  elseif o.op ~= "idcode" then
    k[#k + 1] = o.text or o.cmd
  end
  if o.error then k[#k + 1] = "!" .. o.error end
  return table.concat(k, " ")
end

--- M.ops(path, opts) -> list of operations with their diff keys (repeats folded).
function M.ops(path, opts)
  local list = {}
  local iter = M.reader(path, opts)
  for o in iter do
    o.key = key(o, opts and opts.data)
    if o.key and not (list[#list] and list[#list].key == o.key) then list[#list + 1] = o end
  end
  return list
end

--- M.diff(a, b, opts) -> divergences: { {ia, ib, a={ops}, b={ops}, context={ops}}... }.
-- a, b: operation lists from M.ops. opts: {max=5, context=3, window=200}.
function M.diff(a, b, opts)
  opts = opts or {}
  local max, ctx, window = opts.max or 5, opts.context or 3, opts.window or 200
  local out = {}
  local i, j = 1, 1
  while i <= #a or j <= #b do
    if i <= #a and j <= #b and a[i].key == b[j].key then
      i, j = i + 1, j + 1
    else
      -- the nearest resynchronisation: a run of 3 equal keys after skipping di / dj operations
      local best
      for s = 1, window do
        for di = 0, s do
          local dj = s - di
          local ok = i + di <= #a and j + dj <= #b
          for k = 0, 2 do
            if not ok then break end
            local x, y = a[i + di + k], b[j + dj + k]
            ok = (x == nil and y == nil) or (x and y and x.key == y.key)
          end
          if ok then best = { di, dj }; break end
        end
        if best then break end
      end
      if not best then best = { #a - i + 1, #b - j + 1 } end
      local d = { ia = i, ib = j, a = {}, b = {}, context = {} }
      for k = math.max(1, i - ctx), i - 1 do d.context[#d.context + 1] = a[k] end
      for k = i, math.min(i + best[1] - 1, i + 9) do d.a[#d.a + 1] = a[k] end
      for k = j, math.min(j + best[2] - 1, j + 9) do d.b[#d.b + 1] = b[k] end
      d.na, d.nb = best[1], best[2]
      out[#out + 1] = d
      if #out >= max then break end
      i, j = i + best[1], j + best[2]
    end
  end
  return out
end

return M
