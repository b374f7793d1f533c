--- sfi.image: SFI images (ST's .sfi format): load and inspect, verify, decrypt, split into the
-- parts RSS installs one at a time, and build from firmware files (bin, Intel HEX, S-record,
-- ELF) and an option-byte CSV. Format and model parts: docs/sfi-image.md.
local core = require "sfi.core.image"
local device = require "sfi.device"
local errors = require "sfi.error"
local log = require "sfi.log"
local util = require "sfi.util"

local M = {}

local Image = {}
Image.__index = Image

local function basename(p) return (p:match("([^/]+)$")) or p end

-- The largest flash of any device pack: what an image or a firmware file can legally hold.
local function largest_flash()
  local kb = 0
  for devid in pairs(device.families) do
    local ok, pack = pcall(device.by_devid, devid)
    if ok then
      for _, part in pairs(pack.parts) do kb = math.max(kb, part.flash_kb or 0) end
    end
  end
  return kb * 1024
end

--- M.IMAGE_MAX: the largest .sfi file read: twice the largest flash of any pack (F areas,
-- their 0xFF fill and the per-area records) plus 1 MiB (C, P/R, S and module areas).
M.IMAGE_MAX = 2 * largest_flash() + 1024 * 1024
--- M.FIRMWARE_MAX: the largest firmware file read: 32 times the largest flash (Intel HEX and
-- S-record take up to ~2.5 bytes per byte; ELF files carry symbols and debug sections).
M.FIRMWARE_MAX = 32 * largest_flash()

local function readfile(path, what, max)
  return util.read_file(path, what, max or M.FIRMWARE_MAX)
end

--- M.secret(v, n, what) -> bytes: v is the path of a file holding exactly n bytes, or
-- {bytes = s} with s exactly n bytes (from a program, never from a command line). A string is
-- always a path: a mistyped key path is an error, never a key, and the error does not repeat
-- the string (it may be a key typed where a path belongs). Raises NOT_FOUND (no such file),
-- FORMAT (not a regular file, wrong size); a string for a bug (wrong type).
function M.secret(v, n, what)
  if type(v) == "table" and type(v.bytes) == "string" then
    if #v.bytes ~= n then error(string.format("%s must be %d bytes, got %d", what, n, #v.bytes), 2) end
    return v.bytes
  end
  if type(v) ~= "string" then error(what .. " must be a file path or {bytes = ...}", 2) end
  if not util.stat(v) then
    errors.raise("NOT_FOUND", "image", string.format("%s file: no such file (%ss are read " ..
      "from files only; the value given is not shown)", what, what))
  end
  local s = util.read_file(v, what .. " file", 4096)
  if #s ~= n then
    errors.raise("FORMAT", "image", string.format("%s file %s holds %d bytes, expected %d", what, v,
      #s, n))
  end
  return s
end

local function wrap(u)
  return setmetatable({ _u = u }, Image)
end

--- M.parse(bytes) -> img. Raises FORMAT naming the offset and area.
function M.parse(bytes)
  return wrap(core.parse(bytes))
end

--- M.load(path) -> img. Raises NOT_FOUND (no file) or FORMAT (not a regular file, larger
-- than M.IMAGE_MAX, not a valid image).
function M.load(path)
  local ok, img = pcall(core.parse, readfile(path, "SFI image", M.IMAGE_MAX))
  if not ok then
    if errors.is(img) then img.msg = path .. ": " .. tostring(img.msg) end
    error(img, 0)
  end
  return wrap(img)
end

--- img:info() -> {protocol, version, areas = n, size, hashed, legacy}: version is the image
-- version (the areas' version byte); hashed: every area carries the 16-byte hash; legacy:
-- written by an earlier sfirun (hashed areas marked 0x97).
function Image:info() return self._u:info() end

--- img:areas() -> list of {type, what, version, index, size, addr, offset, length, hash?}
function Image:areas() return self._u:areas() end

--- img:header_bytes() -> the 28-byte header (written at the device's header address).
function Image:header_bytes() return self._u:header_bytes() end

--- img:parts([ram_size]) -> list of {first, last, bytes, payload[, fits]}: parts end at each P
-- area and the next starts at its R area. bytes = what is written to RAM after the header;
-- payload = bytes without P/R areas; fits (with ram_size) = payload <= ram_size (model rule).
function Image:parts(ram_size)
  local areas = self._u:areas()
  local parts, cur = {}, nil
  for _, a in ipairs(areas) do
    if not cur then cur = { first = a.index, bytes = 0, payload = 0, offset = a.offset } end
    cur.last = a.index
    cur.bytes = cur.bytes + a.length
    if a.type ~= "P" and a.type ~= "R" then cur.payload = cur.payload + a.length end
    if a.type == "P" then parts[#parts + 1] = cur; cur = nil end
  end
  if cur then parts[#parts + 1] = cur end
  for _, p in ipairs(parts) do
    if ram_size then p.fits = p.payload <= ram_size end
  end
  return parts
end

--- img:part_bytes(i) -> bytes of part i as written to RAM after the header. Raises a string
-- for a part that does not exist.
function Image:part_bytes(i)
  local p = self:parts()[i]
  if not p then error("no part " .. tostring(i), 2) end
  return self._u:raw(p.offset, p.bytes)
end

--- img:verify(key, nonce) -> true | false, reason. key/nonce: bytes or file paths.
function Image:verify(key, nonce)
  return self._u:verify(M.secret(key, 16, "key"), M.secret(nonce, 12, "nonce"))
end

--- img:decrypt(key, nonce) -> list of {type, index, addr, data}. Raises CRYPTO naming the area.
function Image:decrypt(key, nonce)
  return self._u:decrypt(M.secret(key, 16, "key"), M.secret(nonce, 12, "nonce"))
end

--- img:close(): frees the image; later use raises.
function Image:close() self._u:close() end
Image.__close = Image.close
function Image:__tostring() return tostring(self._u) end

--- M.flash_for(devid) -> pack, ranges: flash of the family's largest part.
function M.flash_for(devid)
  local pack = device.by_devid(devid)
  local kb = 0
  for _, part in pairs(pack.parts) do
    if (part.flash_kb or 0) > kb then kb = part.flash_kb end
  end
  return pack, device.flash_ranges(pack, kb)
end

--- M.obcsv(path, rows) -> bytes of the C area (4 per row); rows = the device pack's
-- sfi.ob_rows. Raises NOT_FOUND / FORMAT naming the line, column or row.
function M.obcsv(path, rows)
  return core.obcsv(basename(path), readfile(path, "option-byte file", 64 * 1024), rows)
end

--- M.PROTOCOL: the image protocol M.build writes when none is asked for (the only place this
-- default is set: M.build always passes the protocol to the codec).
M.PROTOCOL = 2

--- M.build(opts) -> img (the written image, loaded back). opts: devid, part?, ram_size?,
-- token?, version?, key, nonce (paths, or {bytes=}), ob? (CSV path), hash?, protocol? (M.PROTOCOL),
-- areas = { {type, addr, file | data} ... }? (H, O, S, M... areas placed before the firmware),
-- firmware = { {file, addr?} | {data, name, addr?} ... }, out (path ending .sfi).
-- Raises USAGE (bad options), NOT_FOUND (missing file), FORMAT (bad input, overlap, outside
-- flash, empty), IO. Never leaves a partial output file.
function M.build(opts)
  if type(opts) ~= "table" then error("image.build: options table expected", 2) end
  if type(opts.out) ~= "string" or not opts.out:match("%.sfi$") then
    errors.raise("USAGE", "image.build", "output file must end with .sfi")
  end
  local protocol = opts.protocol or M.PROTOCOL
  if protocol ~= 1 and protocol ~= 2 then
    errors.raise("USAGE", "image.build", "protocol must be 1 or 2")
  end
  local hash = opts.hash and opts.hash ~= 0 or false
  if hash and protocol < 2 then
    errors.raise("USAGE", "image.build", "hash needs protocol 2")
  end
  local flash, ob_rows, token, ram_size = nil, nil, opts.token, opts.ram_size or 0
  if opts.ob and not opts.devid then
    errors.raise("USAGE", "image.build", "an option-byte CSV needs the device (--devid): its " ..
      "rows are the device's")
  end
  if opts.devid then
    local pack, ranges = M.flash_for(opts.devid)
    if opts.part then
      local _, part = device.find_part(opts.part)
      ranges = device.flash_ranges(pack, part.flash_kb)
    end
    flash = ranges
    ob_rows = pack.sfi and pack.sfi.ob_rows
    if opts.ob and not ob_rows then
      errors.raise("USAGE", "image.build", string.format("the %s device pack lists no " ..
        "option-byte CSV rows", pack.family))
    end
    if hash and pack.sfi and pack.sfi.hash == "unsupported" then
      log.warn("%s: RSS of this family rejects hashed images (%s)", pack.family,
        pack.sfi.message_hash_unsupported or "hash unsupported")
    end
    if token == nil and opts.ram_size and pack.sfi then token = pack.sfi.token end
    if opts.ram_size and pack.sfi and pack.sfi.pause_resume == false then
      log.info("%s: ST's tools write no pause/resume areas for this family; the RAM size " ..
        "(0x%X) does not split the image", pack.family, opts.ram_size)
      ram_size = 0
    end
  end
  local fw = {}
  if type(opts.firmware) ~= "table" or #opts.firmware == 0 then
    errors.raise("USAGE", "image.build", "no firmware given")
  end
  for i, f in ipairs(opts.firmware) do
    if f.data then
      fw[i] = { name = f.name or ("firmware " .. i), data = f.data, addr = f.addr }
    else
      if type(f.file or f[1]) ~= "string" then error("firmware " .. i .. ": file expected", 2) end
      local path = f.file or f[1]
      fw[i] = { name = basename(path), data = readfile(path, "firmware"), addr = f.addr or f[2] }
    end
  end
  local extra = {}
  for i, x in ipairs(opts.areas or {}) do
    extra[i] = { type = x.type, addr = x.addr or 0,
                 data = x.data or readfile(x.file, x.type .. " area file") }
  end
  local ob
  if opts.ob then ob = M.obcsv(opts.ob, ob_rows) end
  local size, areas = core.build {
    protocol = protocol, version = opts.version or 0, hash = hash,
    ram_size = ram_size, token = token,
    key = M.secret(opts.key, 16, "key"), nonce = M.secret(opts.nonce, 12, "nonce"),
    ob = ob, flash = flash, firmware = fw, extra = extra, out = opts.out,
  }
  log.event("image_built", { file = opts.out, size = size, areas = areas, protocol = protocol,
    hash = hash }, string.format("SFI image %s built: %d bytes, %d areas", opts.out, size, areas))
  return M.load(opts.out)
end

--- M.write(path, bytes, [exclusive]) -> true: atomic write (temp + rename); exclusive refuses
-- to overwrite. Raises IO.
function M.write(path, bytes, exclusive) return core.write(path, bytes, exclusive) end

return M
