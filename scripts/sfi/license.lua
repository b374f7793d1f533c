--- sfi.license: chip certificates and licence providers. A provider makes the 136-byte
-- licence for a chip certificate: "token" (PKCS#11 HSM, the default), "keyfile" (development
-- only: the firmware key is in host memory; warns on every use) or "file" (a licence made
-- elsewhere, e.g. by ST's HSM tooling). Every request is journaled (sfi.journal).
local core = require "sfi.core.license"
local errors = require "sfi.error"
local journal = require "sfi.journal"
local log = require "sfi.log"

local M = {}

M.CERT_SIZE = 136
M.LICENSE_SIZE = 136

--- M.parse_cert(cert) -> {product_id, pub, sig}. Raises FORMAT.
M.parse_cert = core.cert_parse
--- M.verify_cert(cert, ca_pub64) -> true. Raises FORMAT (layout) or AUTH (signature).
M.verify_cert = core.cert_verify
--- M.parse(lic) -> {type, maker = "st"|"sfirun", session, version, min_version, eph}: ST's
-- "SFIG" licences (made by TPC or an STM32HSM) and sfirun's "SFL1" ones. Raises FORMAT.
M.parse = core.parse
--- M.on_curve(pub64) -> boolean: X||Y (big-endian) is a point on P-256.
M.on_curve = core.on_curve
--- M.open(chip_priv32, lic) -> key16, iv16: what the chip's RSS does. Raises FORMAT/CRYPTO/AUTH.
M.open = core.open
--- M.make_cert(ca_priv32, product_id, chip_pub64) -> cert136 (simulator CA side).
M.make_cert = core.cert_make
--- M.make_soft(chip_pub64, key16, iv16) -> lic136: software licence (development only).
M.make_soft = core.make_soft
--- M.chip_identity(uid, seed32) -> priv32, pub64: deterministic simulated chip key pair.
M.chip_identity = core.chip_identity

local function readfile(path, what)
  local f, err = io.open(path, "rb")
  if not f then errors.raise("NOT_FOUND", "license", what .. ": " .. tostring(err)) end
  local s = f:read("a")
  f:close()
  return s
end

--- M.load_key(path, private) -> priv32|nil, pub64: a P-256 PEM key file. Raises NOT_FOUND, FORMAT.
function M.load_key(path, private)
  return core.pem_key(readfile(path, "key file"), private)
end

--- M.read_secret(path, sizes, what) -> bytes: raw bytes of an allowed size, or the same as hex
-- text. Raises NOT_FOUND, FORMAT.
function M.read_secret(path, sizes, what)
  local s = readfile(path, what)
  for _, n in ipairs(sizes) do if #s == n then return s end end
  local hex = s:gsub("%s", "")
  for _, n in ipairs(sizes) do
    if #hex == 2 * n and hex:match("^%x+$") then
      return (hex:gsub("%x%x", function (h) return string.char(tonumber(h, 16)) end))
    end
  end
  local list = {}
  for _, n in ipairs(sizes) do list[#list + 1] = tostring(n) end
  errors.raise("FORMAT", "license", string.format("%s %s: %d bytes, want %s (raw or hex)",
    what, path, #s, table.concat(list, " or ")))
end

--- M.read_nonce(path) -> 16-byte IV field (12-byte nonce padded with zeros). Raises FORMAT.
function M.read_nonce(path)
  local n = M.read_secret(path, { 12, 16 }, "nonce file")
  if #n == 12 then n = n .. string.rep("\0", 4) end
  if n:sub(13) ~= string.rep("\0", 4) then
    errors.raise("FORMAT", "license", "nonce file " .. path .. ": the last 4 of 16 bytes must be 0")
  end
  return n
end

local Provider = {}
Provider.__index = Provider

--- M.provider{kind="token", hsm=session | uri=, ...} | {kind="keyfile", key=, nonce=, ca=}
-- | {kind="file", path=} -> provider with p:get(cert, meta) -> licence136.
function M.provider(opts)
  local kind = opts.kind or "token"
  local p = setmetatable({ kind = kind, opts = opts }, Provider)
  if kind == "token" then
    if not opts.hsm then
      local hsm = require "sfi.hsm"
      p.hsm = hsm.open(opts)
      p.owned = true
    else
      p.hsm = opts.hsm
    end
  elseif kind == "keyfile" then
    if not (opts.key and opts.nonce) then error("keyfile provider needs key= and nonce=", 2) end
  elseif kind == "file" then
    if not opts.path then error("file provider needs path=", 2) end
  else
    error("unknown licence provider kind '" .. tostring(kind) .. "'", 2)
  end
  return p
end

--- p:close(): closes a token session the provider opened itself.
function Provider:close()
  if self.owned and self.hsm then self.hsm:close() end
  self.hsm = nil
end
Provider.__close = Provider.close
function Provider:__tostring()
  return "sfi.license.provider (" .. self.kind .. (self.owned and ", with its HSM session" or "") .. ")"
end

--- p:get(cert, [meta]) -> licence136. Raises as the provider does (AUTH, COUNTER, FORMAT ...).
function Provider:get(cert, meta)
  meta = meta or {}
  local o = self.opts
  if self.kind == "token" then
    return (self.hsm:license(cert, meta))
  end
  if #cert ~= M.CERT_SIZE then
    errors.raise("FORMAT", "license.get", "certificate is " .. #cert .. " bytes, not 136")
  end
  local req = { uid = meta.uid, cert = cert, recipe = meta.recipe, station = meta.station,
                journal = meta.journal or o.journal, fwid = o.fwid, provider = self.kind,
                fields = meta.fields }
  if self.kind == "keyfile" then
    log.warn("licence from a KEY FILE (development only: the firmware key is in host memory)")
    return (journal.record(req, function ()
      if o.ca then
        local ca = o.ca
        if #ca ~= 64 then ca = select(2, M.load_key(ca, false)) end
        core.cert_verify(cert, ca)
      end
      local c = core.cert_parse(cert)
      local key = M.read_secret(o.key, { 16 }, "key file")
      local iv = M.read_nonce(o.nonce)
      return core.make_soft(c.pub, key, iv)
    end))
  end
  return (journal.record(req, function ()
    local path = o.path:gsub("{uid}", meta.uid or "")
    local lic = readfile(path, "licence file")
    if #lic ~= M.LICENSE_SIZE then
      errors.raise("FORMAT", "license.get", string.format("licence file %s: %d bytes, not 136",
        path, #lic))
    end
    local info = M.parse(lic)
    log.info("licence file %s: made by %s", path, info.maker == "st" and "ST's tools (SFIG)" or
      "sfirun (SFL1, accepted by the simulator only)")
    return lic
  end))
end

return M
