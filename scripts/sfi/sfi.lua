--- sfi.sfi: the Secure Firmware Install flow over SWD as a pipeline of named steps
-- (sfi.pipeline) that a recipe edits: licence source -> connect -> identify -> check device
-- -> option bytes -> image -> resume -> chip certificate -> licence -> activate security ->
-- sfi write mode -> parts (per part: load part, start rss, reconnect, rss result, security
-- state) -> final state. On a failure after the chip was changed the "abort" step runs: RDP
-- regression (flash erased), the option bytes are shown, and the error says which step
-- failed, what the chip said and whether a licence was consumed. The log reads like ST's tool.
-- How the debugger starts the RSS and where it reports is a model (docs/sfi-model.md): the
-- addresses and codes come from the device pack, and the simulator follows the same table.
local core = require "sfi.core"
local config = require "sfi.config"
local device = require "sfi.device"
local errors = require "sfi.error"
local flow = require "sfi.flow"
local image = require "sfi.image"
local license = require "sfi.license"
local log = require "sfi.log"
local ob = require "sfi.ob"
local diagnose = require "sfi.diagnose"
local pipeline = require "sfi.pipeline"
local preflight = require "sfi.preflight"
local probe = require "sfi.probe"
local util = require "sfi.util"

local M = {}

local TOKEN_MAGIC <const> = 0x54434653 -- "SFCT": continuation token record (model)
local PENDING <const> = 0xFFFFFFFF     -- written to the result word before each RSS run

--- M.STRATEGY: the reconnect strategy after each RSS run when a recipe names none: its
-- `strategy` and `tries` parameters default to these (M.strategy).
M.STRATEGY = { name = "alternate", tries = 6 }
local STRATEGIES <const> = { "alternate", "backoff", "fixed" } -- the names M.strategy takes

--- M.params(over) -> the parameter table shared by the SFI recipes; `over` replaces defaults
-- (e.g. {probe = "sim:stm32h7b3"}).
function M.params(over)
  over = over or {}
  return {
    image = { type = "path", doc = "encrypted SFI image (.sfi)" },
    probe = { type = "uri", default = over.probe or "sim:stm32h753", doc = "probe URI" },
    hsm = { type = "uri?", doc = "PKCS#11 URI of the licence token" },
    licence = { type = "path?", doc = "licence file made elsewhere (instead of an HSM)" },
    key = { type = "path?", doc = "firmware key file: DEVELOPMENT ONLY licence provider" },
    nonce = { type = "path?", doc = "firmware nonce file (with key)" },
    strategy = { type = "string", default = over.strategy or M.STRATEGY.name,
                 choices = STRATEGIES, doc = "reconnect strategy after RSS" },
    tries = { type = "integer", default = over.tries or M.STRATEGY.tries, min = 1, max = 50,
              doc = "reconnect attempts after each RSS run" },
    verify = { type = "path?", doc = "plaintext firmware (.bin at the flash start) to compare at the end" },
    allow_errata = { type = "boolean", default = false, doc = "run despite a known SFI erratum" },
    station = { type = "string?", doc = "station name for the licence journal" },
    push = { type = "string?", doc = "PostgreSQL URI: push the journal there after the install " ..
      "(best effort: a database that is down only warns)" },
    licence_command = { type = "string?", doc = "program that makes the licence: words with " ..
      "{cert} {out} {uid} {devid}, run without a shell" },
    licence_timeout = { type = "integer", default = 120, min = 1, max = 3600,
      doc = "seconds the licence program may take" },
    hash = { type = "string?", choices = { "unsupported", "optional", "required" },
             doc = "override what this chip's RSS takes (default: the device pack, per bootloader)" },
    protocol = { type = "integer?", min = 1, max = 2,
                 doc = "the one SFI image protocol to accept (default: the device pack, per bootloader)" },
  }
end

--- M.strategy([name], [tries]) -> reconnect policy: "alternate" (flow.alternate's connect
-- modes and reset kinds, growing pauses), "backoff" or "fixed" (flow.fixed's pause); name and
-- tries default to M.STRATEGY. Raises USAGE for another name.
function M.strategy(name, tries)
  name, tries = name or M.STRATEGY.name, tries or M.STRATEGY.tries
  local pause = flow.backoff { tries = tries, base_ms = 50, factor = 2, max_ms = 1000 }
  if name == "fixed" then return flow.fixed { tries = tries } end
  if name == "backoff" then return pause end
  if name ~= "alternate" then
    errors.raise("USAGE", "sfi.options", string.format("reconnect strategy '%s' is not one of %s",
      tostring(name), table.concat(STRATEGIES, ", ")))
  end
  return flow.alternate { tries = tries, pause = pause }
end

local NO_LICENCE <const> = "no licence source: use --hsm URI, --set licence=FILE, or " ..
  "--set key=FILE --set nonce=FILE (development only)"

--- M.licence(args) -> provider options from recipe arguments: hsm (token, the default),
-- licence (file made elsewhere) or key+nonce (development only); {kind = "none"} when none
-- is given (a plan or a preflight needs none; an install stops at its first step).
function M.licence(a)
  local given = 0
  for _, k in ipairs { "hsm", "licence", "licence_command", "key" } do
    if a[k] then given = given + 1 end
  end
  if given > 1 then
    errors.raise("USAGE", nil, "give one licence source: hsm, licence, licence_command or key+nonce")
  end
  if a.licence_command then
    return { kind = "command", command = a.licence_command, timeout = a.licence_timeout }
  end
  if a.hsm then return { kind = "token", uri = a.hsm } end
  if a.licence then return { kind = "file", path = a.licence } end
  if a.key and a.nonce then return { kind = "keyfile", key = a.key, nonce = a.nonce } end
  if a.key or a.nonce then errors.raise("USAGE", nil, "a development key needs both key and nonce") end
  return { kind = "none" }
end

-- {{{ helpers

local function hex(v) return string.format("0x%X", v) end

-- The newest continuation token record for this image (model layout, docs/sfi-model.md).
local function read_token(p, pack, img)
  local s, slots = pack.sfi, pack.rss.token_slots
  local raw = p:read(s.token, 32 * slots)
  local digest = core.sha256(img:header_bytes()):sub(1, 32)
  local last
  for k = 0, slots - 1 do
    local rec = raw:sub(32 * k + 1, 32 * k + 32)
    local magic, state, _, part, nxt = string.unpack("<I4BBI2I2", rec)
    if magic ~= TOKEN_MAGIC then break end
    local d = rec:sub(13, 28):gsub(".", function (c) return string.format("%02x", c:byte()) end)
    last = { state = state, part = part, next = nxt, same = (d == digest) }
  end
  return last
end

-- Licences are bound to one chip: keep each one (not secret) so a rerun on the same chip, e.g.
-- after a power loss, reuses it instead of consuming another from the HSM counter.
local function cache_path(cert, img)
  return config.state_dir() .. "/licences/" .. core.sha256(cert .. img:header_bytes()) .. ".lic"
end

local function cache_get(path)
  local ok, l = pcall(util.read_file, path, "kept licence", license.LICENSE_SIZE)
  return ok and #l == license.LICENSE_SIZE and l or nil
end

local function cache_put(path, lic)
  local ok, err = pcall(function ()
    core.mkdir(path:match("^(.*)/"))
    image.write(path, lic)
  end)
  if not ok then log.warn("could not keep the licence for reuse: %s", tostring(err)) end
end

local function show_ob(p)
  for line in ob.format(p):gmatch("[^\n]+") do log.info("%s", line) end
end

-- }}}

local TRANSIENT <const> = { IO = true, TIMEOUT = true, BUSY = true }

-- fn(...) with transient probe errors retried and a lost link reconnected (pol), a few times:
-- what the abort and the per-part steps need to survive a flaky USB cable.
local function robust(p, pol, fn, ...)
  local last
  for n = 1, 4 do
    local res = table.pack(pcall(fn, ...))
    if res[1] then return table.unpack(res, 2, res.n) end
    last = res[2]
    if not errors.is(last) then error(last, 0) end
    if last.code == "NO_DEVICE" and n < 4 then
      log.warn("%s: NO_DEVICE, reconnecting (%d/4)", last.op or "operation", n + 1)
      flow.reconnect(p, pol or M.strategy())
    elseif TRANSIENT[last.code] and n < 4 then
      log.warn("%s: %s, retrying (%d/4)", last.op or "operation", last.code, n + 1)
      flow.sleep(20 * n)
    else
      error(last, 0)
    end
  end
  error(last, 0)
end
M.robust = robust

--- M.abort(p, [policy]): what ST's tool does after a failed install: RDP 1 then back to 0
-- (the regression erases the user flash and the continuation token), then shows the option
-- bytes. Every stage survives transient probe errors and a lost link (policy: how to
-- reconnect). Raises the probe's errors when it cannot finish; err.rdp then holds the RDP
-- byte last read (0xBB: the chip is left at level 1).
function M.abort(p, pol)
  log.info("Aborting...")
  if not flow.try(p.ping, p) then flow.reconnect(p, pol or M.strategy()) end
  local rdp
  local ok, err = pcall(function ()
    local v = robust(p, pol, ob.read, p)
    rdp = v.RDP
    if v.RDP == 0xAA then
      robust(p, pol, ob.program, p, { RDP = 0xBB })
      rdp = 0xBB
    end
    log.info("Waiting for end of regression...")
    robust(p, pol, ob.program, p, { RDP = 0xAA })
    rdp = 0xAA
    log.info("Display OB after Abort for sanity check")
    robust(p, pol, show_ob, p)
  end)
  if not ok then
    if errors.is(err) then err.rdp = rdp end
    if rdp and rdp ~= 0xAA then
      log.error("THE CHIP IS LEFT AT RDP 0x%02X (level 1): its flash cannot be read or written " ..
        "over debug until it is regressed: run recipes/recover/rdp_regression.lua", rdp)
    end
    error(err, 0)
  end
  log.info("Abort SUCCESS")
end

-- {{{ the failure decoder

--- M.decode_failure(c, v, name, origin, text) -> lines: what is known when an RSS part fails, logged
-- as "Diagnosis:" lines: the result word and what the pack says of it (observed in public
-- logs, the simulator's own code, or unknown), the option bytes, token and flash read back,
-- the preconditions that changed since preflight, whether the licence was consumed, and the
-- likely cause and next step from vendor/st/diagnosis.lua. Never raises.
function M.decode_failure(c, v, name, origin, text)
  local out = {}
  local function say(fmt, ...)
    local line = string.format(fmt, ...)
    out[#out + 1] = line
    log.error("Diagnosis: %s", line)
  end
  local meaning = name and c.pack.rss.meaning and c.pack.rss.meaning[name]
  if origin == "observed" then
    say("RSS complete value %s (%s): seen on real chips: %s", hex(v), name, meaning.observed)
  elseif origin == "model" then
    say("RSS complete value %s (%s) is the simulator's own code for \"%s\" (model, not ST's)",
      hex(v), name, text or meaning.text)
  else
    say("RSS complete value %s: not a value sfirun knows from ST or from public reports", hex(v))
  end
  local ok, state = pcall(function ()
    local o = ob.read(c.p)
    local tok = read_token(c.p, c.pack, c.img)
    local first
    for _, a in ipairs(c.img:areas()) do if a.type == "F" and not first then first = a end end
    local fl = first and c.p:read(first.addr, math.min(first.size, 256)) or ""
    return { ob = o, tok = tok, flash = first and (fl:find("[^\xFF]") and "programmed" or "erased"),
             at = first and first.addr }
  end)
  if ok then
    say("now: RDP 0x%02X, SECURITY %d; continuation token: %s; flash at 0x%08X %s", state.ob.RDP,
      state.ob.SECURITY, state.tok and string.format("part %d done, next area %d%s", state.tok.part,
        state.tok.next, state.tok.same and "" or " (another image)") or "none",
      state.at or 0, state.flash or "?")
    if c.checks then
      local changed = {}
      local now = setmetatable({ ob = state.ob }, { __index = c })
      for _, chk in ipairs(preflight.CHECKS) do
        if chk.name == "rdp" or chk.name == "protected areas" or chk.name == "write protection" then
          local was
          for _, x in ipairs(c.checks) do if x.name == chk.name then was = x.status end end
          local okc, st = pcall(chk.run, now)
          local is = okc and (st == true and "pass" or st == false and "fail" or "unknown") or "unknown"
          if was and was ~= is then changed[#changed + 1] = string.format("%s %s -> %s", chk.name, was, is) end
        end
      end
      say("preconditions changed since preflight: %s", #changed > 0 and table.concat(changed, ", ") or "none")
    end
  else
    say("the chip could not be read back: %s", errors.is(state) and state.code or tostring(state))
  end
  say("licence: %s%s", c.r.facts.licence or "none", name == "license" and
    " (the RSS rejected it: not kept for a rerun)" or c.r.facts.licence == "consumed" and
    " (kept: a rerun on this chip reuses it)" or "")
  local facts = { dev_id = c.info.dev_id, bl = c.info.bl, protocol = c.img:info().protocol,
                  results = { v }, lines = "" }
  local found = diagnose.diagnose(facts)
  local any = false
  for _, d in ipairs(found) do
    if d.kind == "cause" then
      any = true
      say("likely cause: %s [%s]", d.cause, d.source)
      if d.fix then say("next: %s", d.fix) end
    end
  end
  if not any then
    say("next: check the image and the chip with sfirun preflight, and the licence's chip; " ..
      "'sfirun explain LOG' compares this log with the public reports sfirun knows")
  end
  return out
end

-- }}}
-- {{{ workarounds keyed by what the chip reports

-- A quirk applies when every condition it names holds: bl_min/bl_max (bootloader version),
-- rev (revision letter or list of letters).
local function quirk_applies(q, info)
  if q.bl_min and info.bl < q.bl_min then return false end
  if q.bl_max and info.bl > q.bl_max then return false end
  if q.rev then
    local revs = type(q.rev) == "table" and q.rev or { q.rev }
    local hit = false
    for _, r in ipairs(revs) do hit = hit or r == info.rev end
    if not hit then return false end
  end
  return true
end

local QUIRK_FIELDS <const> = { hash = true, protocols = true, note = true, bl_min = true,
  bl_max = true, rev = true, source = true }
local HASH <const> = { unsupported = true, optional = true, required = true }

local function check_quirks(list, where)
  for i, q in ipairs(list or {}) do
    for k in pairs(q) do
      if not QUIRK_FIELDS[k] then
        errors.raise("USAGE", "sfi.options", string.format("%s quirk %d: unknown field '%s'",
          where, i, tostring(k)))
      end
    end
    if q.hash ~= nil and not HASH[q.hash] then
      errors.raise("USAGE", "sfi.options", string.format("%s quirk %d: hash must be unsupported, " ..
        "optional or required", where, i))
    end
  end
end

--- M.device_rules(pack, info, o) -> {hash, protocols, notes}: what this chip's RSS accepts:
-- the pack's sfi table, then the pack's quirks and the recipe's quirks that match the chip
-- (bootloader version, revision), then the recipe's own hash/protocol options.
function M.device_rules(pack, info, o)
  local rules = { hash = pack.sfi.hash, protocols = pack.sfi.protocols, notes = {} }
  local function apply(list)
    for _, q in ipairs(list or {}) do
      if quirk_applies(q, info) then
        if q.hash then rules.hash = q.hash end
        if q.protocols then rules.protocols = q.protocols end
        if q.note then rules.notes[#rules.notes + 1] = q.note end
      end
    end
  end
  apply(pack.sfi.quirks)
  apply(o.quirks)
  if o.hash ~= nil then rules.hash = o.hash end
  if o.protocol ~= nil then rules.protocols = { o.protocol } end
  return rules
end

-- }}}
-- {{{ options

--- M.options(a, o) -> install options: the recipe's arguments a (from M.params) merged with
-- the recipe's own fixed options o = {device = part name, write_mode = {OB fields},
-- connect = "hotplug", hash = "unsupported"|"optional"|"required", protocol = 1|2,
-- quirks = {...}, unfinished = "resume"|"restart"}. Everything is checked here, before the
-- probe or the HSM is opened: a typo in a field, a policy or a write mode raises USAGE.
function M.options(a, o)
  o = o or {}
  local known = { device = true, write_mode = true, connect = true, hash = true, protocol = true,
    quirks = true, unfinished = true, dev_id = true, reconnect = true, licence = true,
    checked = true, pack = true }
  for k in pairs(o) do
    if not known[k] then errors.raise("USAGE", "sfi.options", "unknown install option '" .. tostring(k) .. "'") end
  end
  local out = {}
  for k, v in pairs(o) do out[k] = v end
  out.image = a.image
  out.probe = a.probe
  out.verify = a.verify
  out.station = a.station
  out.allow_errata = a.allow_errata
  if a.hash ~= nil then out.hash = a.hash end
  if a.protocol ~= nil then out.protocol = a.protocol end
  out.licence = o.licence or M.licence(a)
  out.reconnect = o.reconnect or M.strategy(a.strategy, a.tries)
  return M.check_options(out)
end

--- M.check_options(o) -> o: validates install options (see M.options); raises USAGE.
function M.check_options(o)
  if o.device then
    local found, pack = pcall(device.find_part, o.device)
    if not found then errors.raise("USAGE", "sfi.options", errors.is(pack) and pack.msg or tostring(pack)) end
    o.pack = pack
    o.dev_id = o.dev_id or pack.dev_id
    if o.dev_id ~= pack.dev_id then
      errors.raise("USAGE", "sfi.options", string.format("device %s is DEV_ID 0x%03X, not 0x%03X",
        o.device, pack.dev_id, o.dev_id))
    end
    if o.write_mode then ob.check(pack, o.write_mode) end
  end
  if o.hash ~= nil and not HASH[o.hash] then
    errors.raise("USAGE", "sfi.options", "hash must be unsupported, optional or required, got '" ..
      tostring(o.hash) .. "'")
  end
  if o.protocol ~= nil and o.protocol ~= 1 and o.protocol ~= 2 then
    errors.raise("USAGE", "sfi.options", "protocol must be 1 or 2, got " .. tostring(o.protocol))
  end
  if o.unfinished ~= nil and o.unfinished ~= "resume" and o.unfinished ~= "restart" then
    errors.raise("USAGE", "sfi.options", "unfinished must be resume or restart")
  end
  if o.connect ~= nil then
    local ok = false
    for _, m in ipairs(probe.CONNECT_MODES) do ok = ok or m == o.connect end
    if not ok then
      errors.raise("USAGE", "sfi.options", string.format("connect mode '%s' is not one of %s",
        tostring(o.connect), table.concat(probe.CONNECT_MODES, ", ")))
    end
  end
  if o.reconnect ~= nil and not flow.is_policy(o.reconnect) then
    errors.raise("USAGE", "sfi.options", "reconnect must be a flow policy (flow.alternate{...}, ...)")
  end
  o.reconnect = o.reconnect or M.strategy()
  check_quirks(o.quirks, "recipe")
  if o.pack then check_quirks(o.pack.sfi.quirks, o.pack.family) end
  o.checked = true
  return o
end

-- }}}
-- {{{ the steps

local function touch_token(c)
  -- read-only: the newest continuation token record for this image
  return read_token(c.p, c.pack, c.img)
end

local STEPS = {}

STEPS[#STEPS + 1] = {
  name = "licence source", provides = { "provider" },
  doc = "open the licence source (HSM login, files) before the chip is touched",
  run = function (c)
    local l = c.o.licence
    if l.kind == "none" then errors.raise("USAGE", nil, NO_LICENCE) end
    if l.kind == "token" or l.kind == "command" then
      c.provider = c.r:own(license.provider(l))
    else
      c.provider = license.provider(l)
    end
    if c.provider.check then c.provider:check() end
  end,
}

STEPS[#STEPS + 1] = {
  name = "connect", provides = { "probe" }, policy = { retry = 3 },
  doc = "open the probe and connect to the target",
  run = function (c)
    log.info("Connecting to %s (%s mode)", c.o.probe, c.o.connect or "hotplug")
    c.p = c.r:probe { uri = c.o.probe, connect = c.o.connect or "hotplug" }
  end,
}

STEPS[#STEPS + 1] = {
  name = "identify", needs = { "probe" }, provides = { "info", "pack" }, policy = { retry = 3 },
  doc = "read DEV_ID, revision, flash size, bootloader version and UID",
  run = function (c)
    local info = c.p:info()
    local pack = c.p.pack or device.by_devid(info.dev_id)
    c.info, c.pack = info, pack
    log.info("Device ID   : 0x%03X", info.dev_id)
    log.info("Revision ID : Rev %s", info.rev)
    log.info("Device name : %s", pack.family)
    log.info("Flash size  : %s", info.flash_kb >= 1024 and (info.flash_kb // 1024 .. " MBytes")
      or (info.flash_kb .. " KBytes"))
    log.info("BL Version  : 0x%02X", info.bl)
    log.info("Device UID  : %s", info.uid)
    log.context { uid = info.uid }
    c.r:fact("uid", info.uid)
    c.r:fact("licence", "none")
  end,
}

STEPS[#STEPS + 1] = {
  name = "check device", needs = { "info", "pack" }, provides = { "rules" },
  doc = "the chip is the recipe's device; known errata for its bootloader; what its RSS accepts",
  run = function (c)
    local o, info, pack = c.o, c.info, c.pack
    if o.dev_id and info.dev_id ~= o.dev_id then
      local want = device.by_devid(o.dev_id)
      errors.raise("UNSUPPORTED", "sfi.check", string.format("recipe '%s' is for %s (0x%03X) but " ..
        "the chip is %s (0x%03X)", c.r.recipe.name, want.family, o.dev_id, pack.family, info.dev_id))
    end
    if pack.sfi.installable == false then
      errors.raise("UNSUPPORTED", "sfi.check", pack.family .. ": sfirun reads and builds images " ..
        "for this family but cannot install them yet")
    end
    local min = pack.sfi.min_bootloader
    if min and info.bl < min then
      local e = pack.errata and pack.errata[1]
      local why = string.format("bootloader 0x%02X < 0x%02X: %s", info.bl, min,
        e and (e.id .. ": " .. e.text) or "known SFI erratum")
      if not o.allow_errata then
        local err = errors.new("UNSUPPORTED", "sfi.check", why, nil, 0)
        err.hint = "use a chip with bootloader 0x" .. string.format("%02X", min) ..
          " or later, or accept the risk with --set allow_errata=true"
        error(err, 0)
      end
      log.warn("%s (accepted: allow_errata)", why)
    end
    c.rules = M.device_rules(pack, info, o)
    for _, n in ipairs(c.rules.notes) do log.info("Note: %s", n) end
  end,
}

STEPS[#STEPS + 1] = {
  name = "option bytes", policy = { retry = 3 }, needs = { "probe", "pack" }, provides = { "ob" },
  doc = "read the option bytes; SFI over SWD needs RDP level 0",
  run = function (c)
    local pack = c.pack
    log.info("UPLOADING OPTION BYTES DATA ...")
    log.info("Bank : 0x00")
    log.info("Address : 0x%08x", pack.option_bytes.window)
    log.info("Size : %d Bytes", pack.option_bytes.size)
    local v = ob.read(c.p)
    c.ob = v
    if v.RDP ~= 0xAA then
      local err = errors.new("LOCKED", "sfi.option_bytes", string.format("SFI over SWD needs RDP " ..
        "level 0, the chip is at RDP 0x%02X", v.RDP), nil, 0)
      err.hint = "regress first (erases the flash): sfirun recipes/recover/rdp_regression.lua " ..
        "--probe URI --set confirm=erase"
      error(err, 0)
    end
  end,
}

STEPS[#STEPS + 1] = {
  name = "image", needs = { "pack", "rules" }, provides = { "img", "parts" },
  doc = "parse the SFI image; protocol, hash, area types and sizes must suit this chip",
  run = function (c)
    local pack, rules = c.pack, c.rules
    local im = image.load(c.o.image)
    local hi = im:info()
    log.info("SFI parsing file started ...")
    log.info("SFI header information :")
    log.info("SFI protocol version : %d", hi.protocol)
    log.info("SFI total number of areas : %d", hi.areas)
    log.info("SFI image version : %d", hi.version)
    log.info("SFI Areas information :")
    local hashed = false
    for _, a in ipairs(im:areas()) do
      log.info("Parsing Area %d/%d :", a.index, hi.areas)
      log.info("Area type : %s", a.type)
      log.info("Area size : %d", a.size)
      log.info("Area destination address : %s", hex(a.addr))
      hashed = hashed or a.hash ~= nil
    end
    log.info("Parsed File SUCCESS")
    c.img, c.parts = im, im:parts()
    c.r:fact("parts", #c.parts)
    if c.r.preflight_only then return end -- "sfirun preflight" lists these checks itself
    local ok_proto = false
    for _, v in ipairs(rules.protocols) do ok_proto = ok_proto or v == hi.protocol end
    if not ok_proto then
      errors.raise("UNSUPPORTED", "sfi.image", string.format("%s RSS does not accept SFI protocol %d",
        pack.family, hi.protocol))
    end
    if hashed and rules.hash == "unsupported" then
      local err = errors.new("UNSUPPORTED", "sfi.image", pack.sfi.message_hash_unsupported or
        pack.rss.meaning.hash.text, nil, 0)
      err.hint = "rebuild the image without hash: sfirun image build ... --hash 0"
      error(err, 0)
    end
    if not hashed and rules.hash == "required" then
      local err = errors.new("UNSUPPORTED", "sfi.image", pack.family ..
        " RSS requires a hashed SFI image", nil, 0)
      err.hint = "rebuild the image with hash: sfirun image build ... --hash 1"
      error(err, 0)
    end
    local types = pack.sfi.area_types
    for _, a in ipairs(im:areas()) do
      if types and not types:find(a.type, 1, true) then
        errors.raise("UNSUPPORTED", "sfi.image", string.format("area %d is type %s (%s): the %s " ..
          "RSS installs only %s areas", a.index, a.type, a.what or "unknown", pack.family,
          (types:gsub(".", "%0, "):sub(1, -3))))
      end
    end
    local tok_lo, tok_hi = pack.sfi.token, pack.sfi.token + 32 * pack.rss.token_slots
    for _, a in ipairs(im:areas()) do
      if a.type == "F" and a.addr < tok_hi and a.addr + a.size > tok_lo then
        errors.raise("FORMAT", "sfi.image", string.format("area %d (0x%08X..0x%08X) overlaps the " ..
          "continuation token page 0x%08X..0x%08X", a.index, a.addr, a.addr + a.size - 1, tok_lo,
          tok_hi - 1))
      end
    end
    local room = pack.rss.ram_limit - pack.sfi.header_addr - #im:header_bytes()
    for i, part in ipairs(im:parts()) do
      if part.bytes > room then
        errors.raise("FORMAT", "sfi.image", string.format("part %d is %d bytes; the device takes " ..
          "%d: rebuild with a smaller --ramsize", i, part.bytes, room))
      end
    end
  end,
}

STEPS[#STEPS + 1] = {
  name = "resume", needs = { "probe", "img", "ob" }, provides = { "start" }, optional = true,
  doc = "an unfinished install of the same image (continuation token) resumes or restarts",
  run = function (c)
    c.start = 1
    local tok = c.ob.SECURITY == 1 and touch_token(c) or nil
    c.token_record = tok
    if tok and tok.state == 1 and tok.same and tok.next > 0 then
      if c.o.unfinished == "restart" then
        log.warn("an unfinished install of this image was found (part %d done): restarting", tok.part)
        M.abort(c.p)
      else
        for i, part in ipairs(c.parts) do if part.first == tok.next then c.start = i end end
        log.warn("an unfinished install of this image was found: resuming at part %d of %d",
          c.start, #c.parts)
      end
    end
  end,
}

STEPS[#STEPS + 1] = {
  name = "chip certificate", policy = { retry = 3 }, needs = { "probe", "pack" }, provides = { "cert" },
  doc = "read the chip certificate; its product ID must be the device's",
  run = function (c)
    local want = c.pack.sfi.product_id
    local function check(id)
      if id ~= want then
        -- a blank or locked chip reads bytes that are not text: those are shown in hex
        local shown = id:match("^[%w%p ]*$") and "'" .. id .. "'" or
          "0x" .. id:gsub(".", function (ch) return string.format("%02X", ch:byte()) end)
        errors.raise("AUTH", "sfi.certificate", string.format("chip certificate is for product %s, " ..
          "expected '%s'", shown, want))
      end
    end
    -- ST's tool asks for the product ID first: the field the certificate starts with
    check(c.p:read(c.pack.rss.cert, license.PRODUCT_ID_SIZE))
    log.info("getProductID command execution finished")
    log.info("Requesting Chip Certificate from device ...")
    local cert = c.p:read(c.pack.rss.cert, license.CERT_SIZE)
    check(license.parse_cert(cert).product_id)
    log.info("Get Certificate done successfully")
    c.cert = cert
  end,
}

STEPS[#STEPS + 1] = {
  name = "preflight", needs = { "probe", "img", "ob", "info", "rules" }, provides = { "checks" },
  optional = true,
  doc = "every precondition the pack knows, read only: a failure stops before any licence",
  run = function (c)
    local res = preflight.run(c)
    c.checks, c.r.checks = res, res
    local failed = {}
    for _, x in ipairs(res) do
      log.event("check", { check = x.name, status = x.status, detail = x.detail, fix = x.fix },
        string.format("Preflight %-17s %-7s %s", x.name, x.status, x.detail or ""),
        x.status == "fail" and "warn" or (c.r.preflight_only and "info" or "debug"))
      if x.status == "fail" then failed[#failed + 1] = x end
    end
    if #failed > 0 and not c.r.preflight_only then
      local names = {}
      for _, x in ipairs(failed) do names[#names + 1] = x.name .. " (" .. (x.detail or "") .. ")" end
      local e = errors.new("TARGET", "sfi.preflight", string.format("%d precondition(s) failed: %s",
        #failed, table.concat(names, "; ")), nil, 0)
      e.hint = failed[1].fix
      error(e, 0)
    end
  end,
}

STEPS[#STEPS + 1] = {
  name = "licence", needs = { "cert", "img", "provider", "info" }, provides = { "licence" },
  irreversible = "licence",
  doc = "a licence for this chip: reused if one was issued for it before, else from the source",
  run = function (c)
    log.info("requesting license for the current STM32 device")
    c.cache = cache_path(c.cert, c.img)
    local l = cache_get(c.cache)
    if l then
      log.info("Reusing the licence issued earlier for this chip (no licence consumed)")
      c.r:fact("licence", "reused")
      c.lic = l
      return
    end
    l = c.provider:get(c.cert, { uid = c.info.uid, devid = c.info.dev_id, recipe = c.r.recipe.name,
      station = c.o.station, fields = next(c.fields) and c.fields or nil })
    c.r:fact("licence", "consumed")
    cache_put(c.cache, l)
    log.info("Succeed to get License for Firmware from %s", c.o.licence.kind == "token" and "HSM"
      or c.o.licence.kind)
    c.lic = l
  end,
}

STEPS[#STEPS + 1] = {
  name = "activate security", policy = { retry = 3 }, needs = { "probe" }, aborts = true,
  doc = "option byte SECURITY = 1",
  run = function (c)
    log.info("Starting Firmware Install operation...")
    log.info("Activating security...")
    ob.program(c.p, { SECURITY = 1 })
    log.info("Activating security Success")
  end,
}

STEPS[#STEPS + 1] = {
  name = "sfi write mode", policy = { retry = 3 }, needs = { "probe" }, aborts = true,
  doc = "the recipe's write mode in the option bytes (SECURITY, ST_RAM_SIZE, boot bits)",
  run = function (c)
    log.info("Setting write mode to SFI")
    ob.program(c.p, c.o.write_mode or { SECURITY = 1 })
    log.info("Succeed to set write mode for SFI")
  end,
}

-- The RSS complete value of part c.part, read on the link as it is: c.rss.value. Raises
-- NO_DEVICE while the debug port does not answer, TARGET when the RSS did not run or the
-- chip lost its RAM while it ran.
local function read_rss(c)
  local rss, i = c.pack.rss, c.part
  -- the RSS clears its trigger word when it runs (model): anything else there means the RAM
  -- did not keep its content (power lost), and no word in it can be trusted
  local mb = c.p:read32(rss.mailbox)
  if mb == rss.magic then
    errors.raise("TARGET", "sfi.rss", string.format("part %d: the RSS did not run (its trigger " ..
      "is still pending after the reset)", i))
  elseif mb ~= 0 then
    log.error("The chip lost power (or its RAM) while the RSS ran: the RSS result is unknown")
    local e = errors.new("TARGET", "sfi.rss", string.format("part %d: the chip lost power while " ..
      "the RSS ran (trigger word 0x%08X: RAM content lost); the RSS result is unknown", i, mb),
      nil, 0)
    e.power_loss = true
    e.hint = "check the board's supply and the probe's power; a rerun reuses this chip's licence"
    error(e, 0)
  end
  local v = c.p:read32(rss.result)
  log.info("RSS command execution OK")
  log.info("RSS complete Value = %s", hex(v))
  if v == PENDING then
    errors.raise("TARGET", "sfi.rss", string.format("part %d: the RSS did not run (result " ..
      "word unchanged after the reset)", i))
  end
  c.rss.value = v
end

-- The value read against the pack's codes: ST's three error lines and a TARGET error naming
-- the code (with the failure decoder's diagnosis while the chip answers).
local function judge_rss(c)
  local pack, i, v = c.pack, c.part, c.rss.value
  local name, text, origin = diagnose.code_text(pack, v, c.img:info().hashed)
  local want = i == #c.parts and "ok" or "part_ok"
  if name == want then return end
  log.error("SECURITY State Fail")
  log.error("Invalid state after SFI install !")
  log.error("%s", text or ("unknown RSS result " .. hex(v)))
  if name == "license" and c.cache then os.remove(c.cache) end
  local e = errors.new("TARGET", "sfi.rss", string.format("part %d: RSS complete value %s (%s)", i,
    hex(v), name or "unknown"), text, 0)
  e.rss_result = v
  if not c.rss.lost then e.diagnosis = M.decode_failure(c, v, name, origin, text) end
  error(e, 0)
end

-- Per part: these run inside the flow step "part N" (c.part = N).
local PART_STEPS = {
  {
    name = "load part", needs = { "licence", "img" },
    doc = "licence, image header and the part's areas into the RAM the RSS reads",
    run = function (c)
      local s, i = c.pack.sfi, c.part
      log.info("Starting SFI part %d", i)
      log.info("Writing license to address 0x%08X", s.license_addr)
      c.p:write(s.license_addr, c.lic)
      log.info("Writing Img header to address 0x%08X", s.header_addr)
      local header = c.img:header_bytes()
      c.p:write(s.header_addr, header)
      log.info("Writing areas and areas wrapper...")
      c.p:write(s.header_addr + #header, c.img:part_bytes(i))
      if i == #c.parts then log.info("all areas processed") end
    end,
  },
  {
    name = "start rss", needs = { "probe" },
    doc = "start the RSS: result word set to pending, trigger, system reset (model)",
    run = function (c)
      local rss = c.pack.rss
      log.info("RSS process started...")
      c.rss = {}
      c.p:write32(rss.result, PENDING) -- so a result nobody wrote is never taken for one
      c.p:write32(rss.mailbox, rss.magic)
      flow.try(c.p.reset, c.p, "sw") -- the chip may drop the link while RSS runs
    end,
  },
  {
    name = "rss value", needs = { "probe" },
    doc = "read the RSS complete value on the link the RSS run leaves, as ST's tool does " ..
      "(when that link is down: after the reconnect)",
    run = function (c)
      -- On silicon the RSS may still be running here: a link that does not answer, answers
      -- WAIT or errors, or a trigger or result word not yet changed, is "not yet", not a
      -- failure. The value is then read after the reconnect, where the same read decides.
      -- Only a RAM that lost its content (power) is final now.
      local ok, err = pcall(read_rss, c)
      if not ok then
        if errors.is(err) and err.power_loss then error(err, 0) end
        if not errors.is(err) or not (errors.is(err, "NO_DEVICE") or errors.is(err, "TIMEOUT") or
            errors.is(err, "IO") or errors.is(err, "TARGET")) then
          error(err, 0)
        end
        if errors.is(err, "NO_DEVICE") then
          log.info("The debug port does not answer after the RSS run: the RSS complete value is " ..
            "read after reconnecting")
        else
          log.info("The RSS complete value is not ready on this link (%s): it is read after " ..
            "reconnecting", err.msg)
        end
        c.rss.pending = true
      end
      if c.part == #c.parts then log.info("Checking security state after SFI...") end
    end,
  },
  {
    name = "reconnect", needs = { "probe" },
    doc = "reconnect after the RSS run with the recipe's strategy",
    run = function (c)
      log.info("Reconnecting...")
      local ok, err = pcall(flow.reconnect, c.p, c.o.reconnect)
      if ok then return end
      -- the value was read before the link went: a bad one is the error to report; after the
      -- last part a good one ends the install without the state check (ST: "Could not verify
      -- security state after last chunk programming"); before it, the next part needs the link
      if c.rss.value ~= nil and errors.is(err, "NO_DEVICE") then
        c.rss.lost = err
        judge_rss(c)
        if c.part == #c.parts then return end
      end
      error(err, 0)
    end,
  },
  {
    name = "rss result", needs = { "probe" },
    doc = "the RSS complete value against the pack's codes; a failure names the code",
    run = function (c)
      if c.rss.pending then
        read_rss(c)
        c.rss.pending = nil
      end
      judge_rss(c)
    end,
  },
  {
    name = "security state", needs = { "probe" },
    doc = "SECURITY must still be 1 after the RSS run",
    run = function (c)
      if c.rss.lost then -- after the last part only (see "reconnect")
        log.warn("Could not verify security state after last chunk programming")
        c.unverified = c.rss.lost
        return
      end
      if ob.read(c.p).SECURITY ~= 1 then
        errors.raise("TARGET", "sfi.security", "SECURITY State Fail: SECURITY=0 after RSS")
      end
      log.info("SECURITY State Success")
    end,
  },
}

STEPS[#STEPS + 1] = {
  name = "parts", needs = { "licence", "img" }, irreversible = "program", aborts = true,
  steps = PART_STEPS,
  doc = "for each image part (flow step \"part N\"): the steps below",
  run = function (c, pl_self)
    for i = c.start or 1, #c.parts do
      c.r:step("part " .. i, function ()
        c.part = i
        for s in pl_self.steps:each() do
          -- transient probe errors are retried inside each per-part step (all idempotent:
          -- the trigger is the last write of "start rss"); "reconnect" has its own policy
          local ok, err
          if s.name == "reconnect" then ok, err = pcall(s.run, c)
          else ok, err = pcall(robust, c.p, c.o.reconnect, s.run, c) end
          if not ok then
            errors.wrap(err, { substep = s.name })
            error(err, 0)
          end
        end
        c.r:fact("parts_done", i)
      end)
    end
  end,
}

STEPS[#STEPS + 1] = {
  name = "final state", policy = { retry = 3 }, needs = { "probe" },
  doc = "the option bytes after SFI; with verify (and RDP 0) the flash equals the plaintext",
  run = function (c)
    if c.cache then os.remove(c.cache) end -- installed: the licence is spent
    if c.unverified then
      -- the RSS reported the install done, then the chip stopped answering: ST's tool calls
      -- this a success; sfirun says what it could not check, and fails only a requested verify
      log.info("SFI Process Finished!")
      log.warn("the option bytes cannot be shown: the chip does not answer after the last RSS " ..
        "run (%s)", errors.text(c.unverified))
      c.r:fact("security", "unverified")
      if c.o.verify then
        local e = errors.new("NO_DEVICE", "sfi.verify", "flash not compared with " .. c.o.verify ..
          ": the chip does not answer after the last RSS run (the RSS reported the install done)",
          nil, 0)
        e.hint = "power-cycle the board and read the option bytes: sfirun ob read --probe URI"
        error(e, 0)
      end
      return
    end
    local v = ob.read(c.p)
    log.info("SFI Process Finished!")
    show_ob(c.p)
    c.r:fact("rdp", v.RDP)
    c.r:fact("security", v.SECURITY)
    if c.o.verify then
      if v.RDP ~= 0xAA then
        log.warn("flash not compared: RDP 0x%02X blocks debug reads (as it should)", v.RDP)
        return
      end
      local want = util.read_file(c.o.verify, "verify file")
      local base = c.pack.memory.flash[1].start
      local got = c.p:read(base, #want)
      if got ~= want then
        local at = 1
        while got:byte(at) == want:byte(at) do at = at + 1 end
        errors.raise("TARGET", "sfi.verify", string.format("flash differs from %s at 0x%08X",
          c.o.verify, base + at - 1))
      end
      log.info("Flash matches %s (%d bytes, sha256 %s)", c.o.verify, #want, core.sha256(want))
      c.r:fact("verified", true)
    end
  end,
}

STEPS[#STEPS + 1] = {
  name = "abort", on_failure = true, irreversible = "erase", needs = { "probe" },
  doc = "on a failure after the chip was changed: RDP regression (erases flash), OB shown",
  run = function (c) M.abort(c.p, c.o.reconnect) end,
}

-- }}}

-- The context every step shares: c.r (run), c.o (options), then what steps provide
-- (c.p probe, c.info, c.pack, c.rules, c.ob, c.img, c.parts, c.start, c.cert, c.lic, c.part).
local Context = { __name = "sfi.install.context" }
Context.__index = Context

--- c:field(name, value): a custom field of this device (serial number, batch, test result):
-- in the run's result facts and in the journal's licence row when set before "licence".
-- Raises a string for a bad name or a value that is not a string, number or boolean.
function Context:field(name, value)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    error("field name must be an identifier, got " .. tostring(name), 2)
  end
  local t = type(value)
  if t ~= "string" and t ~= "number" and t ~= "boolean" then
    error("field '" .. name .. "': value must be a string, number or boolean", 2)
  end
  self.fields[name] = value
  self.r:fact(name, value)
end

--- M.pipeline(o) -> pipeline (sfi.pipeline) of the install steps for options o (M.options).
-- Step names: licence source, connect, identify, check device, option bytes, image, resume,
-- chip certificate, licence, activate security, sfi write mode, parts (load part, start rss,
-- reconnect, rss result, security state: once per part, as flow step "part N"), final
-- state, and abort (runs only when a step marked `aborts` fails).
function M.pipeline(o)
  local list = {}
  for _, s in ipairs(STEPS) do
    local copy = {}
    for k, v in pairs(s) do copy[k] = v end
    if s.steps then
      copy.steps = {}
      for j, sub in ipairs(s.steps) do
        local x = {}
        for k, v in pairs(sub) do x[k] = v end
        copy.steps[j] = x
      end
    end
    list[#list + 1] = copy
  end
  local pl = pipeline.new(list)
  pl.options = o
  return pl
end

local function licence_text(l)
  if l.kind == "none" then return "none given (an install stops at its first step)" end
  if l.kind == "token" then return "HSM token " .. l.uri end
  if l.kind == "file" then return "licence file " .. l.path end
  if l.kind == "keyfile" then return "key file " .. l.key .. " (DEVELOPMENT ONLY)" end
  if l.kind == "command" then
    return "external program " .. (l.argv and table.concat(l.argv, " ") or l.command)
  end
  return l.kind
end

-- What a quirk matches, in words ("bootloader >= 0x91, revision V").
local function quirk_when(q)
  local w = {}
  if q.bl_min then w[#w + 1] = string.format("bootloader >= 0x%02X", q.bl_min) end
  if q.bl_max then w[#w + 1] = string.format("bootloader <= 0x%02X", q.bl_max) end
  if q.rev then
    w[#w + 1] = "revision " .. (type(q.rev) == "table" and table.concat(q.rev, "/") or q.rev)
  end
  return #w > 0 and table.concat(w, ", ") or "any chip"
end

--- M.rules_plan(o) -> {hash = text, protocol = text, by_chip = {text...}}: the hash and
-- protocol rules an install would apply and where each comes from (the recipe's option, or
-- the device pack's default and its quirks keyed by what the chip reports), for --plan.
function M.rules_plan(o)
  local pack = o.pack
  if not pack then return nil end
  local out = { by_chip = {} }
  local from = "device pack " .. pack.family
  out.hash = o.hash and (o.hash .. " (recipe)") or (pack.sfi.hash .. " (" .. from .. " default)")
  out.protocol = o.protocol and (o.protocol .. " (recipe)") or
    (table.concat(pack.sfi.protocols, " or ") .. " (" .. from .. " default)")
  for _, list in ipairs { { pack.sfi.quirks, from }, { o.quirks, "recipe" } } do
    for _, q in ipairs(list[1] or {}) do
      local what = {}
      if q.hash and not o.hash then what[#what + 1] = "hash " .. q.hash end
      if q.protocols and not o.protocol then
        what[#what + 1] = "protocol " .. table.concat(q.protocols, " or ")
      end
      if #what > 0 then
        out.by_chip[#out.by_chip + 1] = string.format("%s: %s (%s%s)", quirk_when(q),
          table.concat(what, ", "), list[2], q.note and (": " .. q.note) or "")
      end
    end
  end
  return out
end

--- M.plan(r, pl) -> plan table {recipe, probe, licence, reconnect, image, steps}: what the
-- pipeline would do, without opening the probe or the HSM. The image file is parsed when it
-- can be read, to list its parts.
function M.plan(r, pl)
  local o = pl.options
  local out = { recipe = r.recipe.name, version = r.recipe.version, probe = o.probe,
    licence = licence_text(o.licence), reconnect = o.reconnect and tostring(o.reconnect),
    device = o.device, write_mode = o.write_mode, steps = pl:plan() }
  local rules = M.rules_plan(o)
  if rules then
    out.hash, out.protocol, out.by_chip = rules.hash, rules.protocol, rules.by_chip
  end
  local ok, im = pcall(image.load, o.image)
  if ok then
    local hi = im:info()
    out.image = { path = o.image, protocol = hi.protocol, areas = hi.areas, parts = #im:parts() }
  else
    out.image = { path = o.image, error = errors.is(im) and im.msg or tostring(im) }
  end
  local okc, why = pl:check {}
  if not okc then out.problem = why end
  return out
end

--- M.run(r, pl) -> true: runs the pipeline in run context r (or, when r.planning, records its
-- plan in r.plan and returns). Steps marked `aborts` run the "abort" step when they fail.
-- Raises the failing step's sfi.error (err.step, err.hint); r.facts tell whether a licence
-- was consumed, reused or not needed, and the final chip state.
-- The chip time the simulator's timing model charged (sim probes with timing=datasheet), as
-- the run's chip_ms fact: what the chip itself needed, against which sfirun's overhead shows.
local function chip_time(c)
  local p = c.p
  local ms = p and p.sim_chip_ms and p:sim_chip_ms()
  if ms and ms > 0 then c.r:fact("chip_ms", math.floor(ms + 0.5)) end
end

function M.run(r, pl)
  local okc, why = pl:check {}
  if not okc then error("install pipeline: " .. why, 2) end
  if r.planning then
    r.plan = M.plan(r, pl)
    return true
  end
  local c = setmetatable({ r = r, o = pl.options, facts = r.facts, fields = {} }, Context)
  local on_failure = {}
  for s in pl:each() do
    if s.on_failure then on_failure[#on_failure + 1] = s end
  end
  for s in pl:each() do
    if r.preflight_only and s.name == "licence" then break end -- nothing from here on
    if not s.on_failure and not (r.preflight_only and s.name == "licence source") then
      local ok, err
      if s.steps then
        ok, err = pcall(s.run, c, s)
      else
        ok, err = pcall(r.step, r, s.name, function () return s.run(c) end, s.policy)
      end
      if not ok then
        if s.aborts and c.p then
          local a_ok = true
          for _, h in ipairs(on_failure) do
            local hok, herr = pcall(r.step, r, h.name, function () return h.run(c) end, h.policy)
            if not hok then
              a_ok = false
              log.error("Abort failed: %s", errors.is(herr) and (herr.code .. ": " .. herr.msg) or
                tostring(herr))
              if errors.is(err) and errors.is(herr) and herr.rdp and herr.rdp ~= 0xAA then
                err.hint = string.format("licence %s; the chip is LEFT AT RDP 0x%02X (level 1): run " ..
                  "recipes/recover/rdp_regression.lua", r.facts.licence, herr.rdp)
              end
            end
          end
          r:fact("aborted", a_ok)
          chip_time(c)
          if errors.is(err) then
            err.hint = err.hint or string.format("licence %s; chip %s", r.facts.licence,
              a_ok and "regressed to RDP level 0 (flash erased)" or "NOT regressed (abort failed)")
          end
        end
        error(err, 0)
      end
    end
  end
  chip_time(c)
  return true
end

--- M.install(r, o, [edit]) -> true: builds the pipeline for options o (M.options), lets
-- edit(pl) change it (insert, replace, wrap, remove steps), and runs it (M.run).
function M.install(r, o, edit)
  if not o.checked then M.check_options(o) end
  local pl = M.pipeline(o)
  if edit then edit(pl, o) end
  return M.run(r, pl)
end

return M
