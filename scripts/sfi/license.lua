--- sfi.license: chip certificates and licence providers. A provider makes the 136-byte
-- licence for a chip certificate: "token" (PKCS#11 HSM, the default), "keyfile" (development
-- only: the firmware key is in host memory; warns on every use) or "file" (a licence made
-- elsewhere, e.g. by ST's HSM tooling). Every request is journaled (sfi.journal).
local core = require "sfi.core.license"
local config = require "sfi.config"
local errors = require "sfi.error"
local journal = require "sfi.journal"
local log = require "sfi.log"
local sfi = require "sfi.core"
local util = require "sfi.util"

local M = {}

--- M.CERT_SIZE, M.LICENSE_SIZE: the chip certificate's and the licence's sizes (136 bytes
-- each); M.PRODUCT_ID_SIZE: the product ID the certificate starts with (8 ASCII, "45002001").
-- The engine's constants (sfi/license.h).
M.CERT_SIZE, M.LICENSE_SIZE, M.PRODUCT_ID_SIZE = core.CERT_SIZE, core.LICENSE_SIZE,
  core.PRODUCT_ID_SIZE

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

local function readfile(path, what) return util.read_file(path, what, 1024 * 1024) end

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

-- {{{ the external-program provider

--- M.split_words(s) -> {word...}: a command line split as a shell would split plain words,
-- without expanding anything: 'single' and "double" quotes group, a backslash escapes the
-- next character. Raises USAGE on an unterminated quote.
function M.split_words(s)
  local words, cur, i, n = {}, nil, 1, #s
  while i <= n do
    local ch = s:sub(i, i)
    if ch:match("%s") then
      if cur then words[#words + 1] = cur; cur = nil end
    elseif ch == "'" or ch == '"' then
      local j = s:find(ch, i + 1, true)
      if not j then errors.raise("USAGE", nil, "licence_command: unterminated " .. ch .. " quote") end
      cur = (cur or "") .. s:sub(i + 1, j - 1)
      i = j
    elseif ch == "\\" and i < n then
      cur = (cur or "") .. s:sub(i + 1, i + 1)
      i = i + 1
    else
      cur = (cur or "") .. ch
    end
    i = i + 1
  end
  if cur then words[#words + 1] = cur end
  return words
end

-- The program of argv[1] as execve would find it: a path with a slash as given, else PATH.
local function find_program(prog)
  if prog:find("/", 1, true) then return util.stat(prog) == "file" and prog or nil end
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    if util.stat(dir .. "/" .. prog) == "file" then return dir .. "/" .. prog end
  end
  return nil
end

local function command_argv(opts)
  local argv = opts.argv
  if not argv then
    if type(opts.command) ~= "string" or opts.command:match("^%s*$") then
      errors.raise("USAGE", nil, "licence_command is empty")
    end
    argv = M.split_words(opts.command)
  end
  if #argv == 0 then errors.raise("USAGE", nil, "licence_command is empty") end
  if not find_program(argv[1]) then
    errors.raise("USAGE", nil, string.format("licence_command: program '%s' not found%s", argv[1],
      argv[1]:find("/", 1, true) and "" or " in PATH"))
  end
  local has_out = false
  for _, w in ipairs(argv) do has_out = has_out or w:find("{out}", 1, true) ~= nil end
  if not has_out then
    errors.raise("USAGE", nil, "licence_command must name where the licence goes: a word with {out}")
  end
  return argv
end

--- M.st_hsm{slot = 1, cli = PATH, timeout = s} -> provider options that run ST's
-- STM32_Programmer_CLI to get a licence from an STM32HSM card for the chip certificate (the
-- syntax is data: vendor/st/cubeprogrammer.lua).
function M.st_hsm(opts)
  opts = opts or {}
  local st = require "st.cubeprogrammer"
  local slot = tostring(opts.slot or st.default_slot)
  local argv = { opts.cli or st.cli }
  for _, w in ipairs(st.licence_from_cert) do argv[#argv + 1] = (w:gsub("{slot}", slot)) end
  return { kind = "command", argv = argv, timeout = opts.timeout }
end

-- Removes the provider's private files whatever happens (<close>).
local function scratch()
  local base = config.state_dir() .. "/tmp"
  if util.stat(base) ~= "dir" then sfi.mkdir(base) end
  local dir = sfi.mkdtemp(base, "licence-")
  return setmetatable({ dir = dir, files = {} }, { __close = function (t)
    for _, f in ipairs(t.files) do os.remove(f) end
    os.remove(t.dir)
  end })
end

local function last_lines(s, n)
  local lines = {}
  for l in s:gmatch("[^\r\n]+") do lines[#lines + 1] = l end
  return table.concat(lines, " | ", math.max(1, #lines - n + 1))
end

-- Runs the external program for one licence: the certificate in {cert}, the licence expected
-- in {out}; the request is journaled before the program starts and its outcome after, and a
-- program killed by a signal or the time limit leaves the row "unknown" (it may have spent).
local function from_command(self, cert, meta)
  local o = self.opts
  local argv0 = self.argv
  local tmp <close> = scratch()
  local cert_path, out_path = tmp.dir .. "/chip-cert.bin", tmp.dir .. "/licence.bin"
  tmp.files = { cert_path, out_path }
  util.write_file(cert_path, cert)
  local subst = { ["{cert}"] = cert_path, ["{out}"] = out_path, ["{uid}"] = meta.uid or "",
                  ["{devid}"] = meta.devid and string.format("0x%03X", meta.devid) or "" }
  local argv = {}
  for i, w in ipairs(argv0) do argv[i] = (w:gsub("{%a+}", function (k) return subst[k] end)) end
  local req = { uid = meta.uid, cert = cert, recipe = meta.recipe, station = meta.station,
                journal = meta.journal or o.journal, fwid = o.fwid, provider = "command",
                token = argv0[1], fields = meta.fields }
  return (journal.record(req, function ()
    log.info("Asking %s for a licence (up to %d s)", argv0[1], o.timeout or 120)
    local ok, r = pcall(sfi.run, argv, (o.timeout or 120) * 1000)
    if not ok then error(r, 0) end -- CANCELED: the journal leaves the row unknown
    local what
    if r.timed_out then what = string.format("did not finish within %d s", o.timeout or 120)
    elseif r.signal ~= 0 then what = "was killed by signal " .. r.signal
    elseif r.exit ~= 0 then what = "exited with status " .. r.exit end
    if what then
      local e = errors.new("TARGET", "license.command", string.format("%s %s%s", argv0[1], what,
        r.stderr ~= "" and (": " .. last_lines(r.stderr, 3)) or ""), nil, 0)
      e.outcome_unknown = r.timed_out or r.signal ~= 0 or nil
      error(e, 0)
    end
    local kind, size = util.stat(out_path)
    if kind ~= "file" or size ~= M.LICENSE_SIZE then
      errors.raise("FORMAT", "license.command", string.format("%s exited 0 but wrote %s, not one " ..
        "136-byte licence", argv0[1], kind and (size .. " bytes") or "nothing"))
    end
    local lic = util.read_file(out_path, "licence", M.LICENSE_SIZE)
    local info = M.parse(lic)
    log.info("Licence from %s: made by %s", argv0[1], info.maker == "st" and "ST's tools (SFIG)" or "sfirun")
    return lic
  end))
end

-- }}}

--- M.provider{kind="token", hsm=session | uri=, ...} | {kind="keyfile", key=, nonce=, ca=}
-- | {kind="file", path=} | {kind="command", command=string | argv={...}, timeout=s}
-- -> provider with p:get(cert, meta) -> licence136. A command is checked here (program
-- found, a {out} word): USAGE before any chip is touched.
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
  elseif kind == "command" then
    p.argv = command_argv(opts)
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
  if self.kind == "command" then return from_command(self, cert, meta) end
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
