--- sfi.sfi: the Secure Firmware Install flow over SWD, written with sfi.flow steps:
-- connect -> IDs -> image checks -> option bytes -> chip certificate -> licence -> security ->
-- SFI write mode -> for each part: licence, header, areas to RAM, start RSS, reconnect, result,
-- security state -> final state. On a failure after the chip was touched the flow aborts:
-- RDP regression (flash erased), the option bytes are shown, and the error says which step
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

local M = {}

local TOKEN_MAGIC <const> = 0x54434653 -- "SFCT": continuation token record (model)
local PENDING <const> = 0xFFFFFFFF     -- written to the result word before each RSS run

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
    strategy = { type = "string", default = over.strategy or "alternate",
                 choices = { "alternate", "backoff", "fixed" }, doc = "reconnect strategy after RSS" },
    tries = { type = "integer", default = over.tries or 6, min = 1, max = 50,
              doc = "reconnect attempts after each RSS run" },
    verify = { type = "path?", doc = "plaintext firmware (.bin at the flash start) to compare at the end" },
    allow_errata = { type = "boolean", default = false, doc = "run despite a known SFI erratum" },
    station = { type = "string?", doc = "station name for the licence journal" },
  }
end

--- M.strategy(name, tries) -> reconnect policy: "alternate" (hotplug/normal with sw/hw
-- resets, growing pauses), "backoff" or "fixed".
function M.strategy(name, tries)
  local pause = flow.backoff { tries = tries, base_ms = 50, factor = 2, max_ms = 1000 }
  if name == "fixed" then return flow.fixed { tries = tries, delay_ms = 200 } end
  if name == "backoff" then return pause end
  return flow.alternate { tries = tries, connect = { "hotplug", "normal" }, reset = { "sw", "hw" },
                          pause = pause }
end

--- M.licence(args) -> provider options from recipe arguments: hsm (token, the default),
-- licence (file made elsewhere) or key+nonce (development only). Raises USAGE when none.
function M.licence(a)
  if a.hsm then return { kind = "token", uri = a.hsm } end
  if a.licence then return { kind = "file", path = a.licence } end
  if a.key and a.nonce then return { kind = "keyfile", key = a.key, nonce = a.nonce } end
  errors.raise("USAGE", nil, "no licence source: use --hsm URI, --set licence=FILE, or " ..
    "--set key=FILE --set nonce=FILE (development only)")
end

-- {{{ helpers

local function hex(v) return string.format("0x%X", v) end

local function code_name(pack, v)
  for name, c in pairs(pack.rss.codes) do if c == v then return name end end
  return nil
end

-- What ST's tool prints for an RSS failure (user reports), by result name.
local RSS_TEXT <const> = {
  license = "RSS internal system error or License is invalid !",
  header = "image header rejected by RSS (wrong image for this licence?)",
  hash = "SFI with hash is not supported on this device, please disable hash while generating SFI image",
  protocol = "SFI image protocol not supported by this RSS",
  area = "an image area failed its integrity check",
  program = "flash programming failed (flash not erased?)",
  token = "continuation token does not match this image",
  state = "chip not ready for SFI (RDP level, identity)",
}

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
  local f = io.open(path, "rb")
  if not f then return nil end
  local l = f:read("a")
  f:close()
  return #l == license.LICENSE_SIZE and l or nil
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

--- M.abort(p): what ST's tool does after a failed install: RDP 1 then back to 0 (the
-- regression erases the user flash and the continuation token), then shows the option bytes.
-- Raises the probe's errors.
function M.abort(p)
  log.info("Aborting...")
  if not p:connected() then p:reconnect { connect = "hotplug" } end
  local v = ob.read(p)
  if v.RDP == 0xAA then ob.program(p, { RDP = 0xBB }) end
  log.info("Waiting for end of regression...")
  ob.program(p, { RDP = 0xAA })
  log.info("Display OB after Abort for sanity check")
  show_ob(p)
  log.info("Abort SUCCESS")
end

--- M.install(r, o): runs the flow in recipe run context r. o = {image, probe, licence =
-- provider options, dev_id (expected DEV_ID), hash = "device"|true|false, protocol?,
-- connect = "hotplug", reconnect = policy, write_mode = {OB fields}, verify = path?,
-- allow_errata, station, unfinished = "resume"|"restart"}.
-- Raises the failing step's sfi.error (err.step, err.hint); r.facts tell whether a licence
-- was consumed, reused or not needed, and the final chip state.
function M.install(r, o)
  local p = r:step("connect", function ()
    log.info("Connecting to %s (%s mode)", o.probe, o.connect or "hotplug")
    return r:probe { uri = o.probe, connect = o.connect or "hotplug" }
  end, { retry = 3 })
  local info = r:step("identify", function () return p:info() end, { retry = 3 })
  local pack = p.pack or device.by_devid(info.dev_id)
  log.info("Device ID   : 0x%03X", info.dev_id)
  log.info("Revision ID : Rev %s", info.rev)
  log.info("Device name : %s", pack.family)
  log.info("Flash size  : %s", info.flash_kb >= 1024 and (info.flash_kb // 1024 .. " MBytes")
    or (info.flash_kb .. " KBytes"))
  log.info("BL Version  : 0x%02X", info.bl)
  log.info("Device UID  : %s", info.uid)
  log.context { uid = info.uid }
  r:fact("uid", info.uid)
  r:fact("licence", "none")

  r:step("check device", function ()
    if o.dev_id and info.dev_id ~= o.dev_id then
      local want = device.by_devid(o.dev_id)
      errors.raise("UNSUPPORTED", "sfi.check", string.format("recipe '%s' is for %s (0x%03X) but " ..
        "the chip is %s (0x%03X)", r.recipe.name, want.family, o.dev_id, pack.family, info.dev_id))
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
  end)

  local img = r:step("image", function ()
    local im = image.load(o.image)
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
    local ok_proto = false
    for _, v in ipairs(pack.sfi.protocols) do ok_proto = ok_proto or v == hi.protocol end
    if not ok_proto then
      errors.raise("UNSUPPORTED", "sfi.image", string.format("%s RSS does not accept SFI protocol %d",
        pack.family, hi.protocol))
    end
    if hashed and pack.sfi.hash == "unsupported" then
      local err = errors.new("UNSUPPORTED", "sfi.image", pack.sfi.message_hash_unsupported or
        RSS_TEXT.hash, nil, 0)
      err.hint = "rebuild the image without hash: sfirun image build ... --hash 0"
      error(err, 0)
    end
    if not hashed and pack.sfi.hash == "required" then
      local err = errors.new("UNSUPPORTED", "sfi.image", pack.family ..
        " RSS requires a hashed SFI image", nil, 0)
      err.hint = "rebuild the image with hash: sfirun image build ... --hash 1"
      error(err, 0)
    end
    local tok_lo, tok_hi = pack.sfi.token, pack.sfi.token + 32 * pack.rss.token_slots
    for _, a in ipairs(im:areas()) do
      if a.type == "F" and a.addr < tok_hi and a.addr + a.size > tok_lo then
        errors.raise("FORMAT", "sfi.image", string.format("area %d (0x%08X..0x%08X) overlaps the " ..
          "continuation token page 0x%08X..0x%08X", a.index, a.addr, a.addr + a.size - 1, tok_lo,
          tok_hi - 1))
      end
    end
    local room = pack.rss.ram_limit - pack.sfi.header_addr - 28
    for i, part in ipairs(im:parts()) do
      if part.bytes > room then
        errors.raise("FORMAT", "sfi.image", string.format("part %d is %d bytes; the device takes " ..
          "%d: rebuild with a smaller --ramsize", i, part.bytes, room))
      end
    end
    return im
  end)
  local parts = img:parts()

  local start = 1
  r:step("option bytes", function ()
    log.info("UPLOADING OPTION BYTES DATA ...")
    log.info("Bank : 0x00")
    log.info("Address : 0x%08x", pack.option_bytes.window)
    log.info("Size : %d Bytes", pack.option_bytes.size)
    local v = ob.read(p)
    if v.RDP ~= 0xAA then
      local err = errors.new("LOCKED", "sfi.option_bytes", string.format("SFI over SWD needs RDP " ..
        "level 0, the chip is at RDP 0x%02X", v.RDP), nil, 0)
      err.hint = "regress first (erases the flash): sfirun ob write --probe URI RDP=0xAA"
      error(err, 0)
    end
    local tok = v.SECURITY == 1 and read_token(p, pack, img) or nil
    if tok and tok.state == 1 and tok.same and tok.next > 0 then
      if o.unfinished == "restart" then
        log.warn("an unfinished install of this image was found (part %d done): restarting", tok.part)
        M.abort(p)
      else
        for i, part in ipairs(parts) do if part.first == tok.next then start = i end end
        log.warn("an unfinished install of this image was found: resuming at part %d of %d",
          start, #parts)
      end
    end
  end)
  r:fact("parts", #parts)

  local cert = r:step("chip certificate", function ()
    log.info("Requesting Chip Certificate from device ...")
    local c = p:read(pack.rss.cert, license.CERT_SIZE)
    local pc = license.parse_cert(c)
    if pc.product_id ~= pack.sfi.product_id then
      errors.raise("AUTH", "sfi.certificate", string.format("chip certificate is for product %s, " ..
        "expected %s", pc.product_id, pack.sfi.product_id))
    end
    log.info("Get Certificate done successfully")
    return c
  end)

  local cache = cache_path(cert, img)
  local lic = r:step("licence", function ()
    log.info("requesting license for the current STM32 device")
    local l = cache_get(cache)
    if l then
      log.info("Reusing the licence issued earlier for this chip (no licence consumed)")
      r:fact("licence", "reused")
      return l
    end
    local prov = r:own(license.provider(o.licence))
    l = prov:get(cert, { uid = info.uid, recipe = r.recipe.name, station = o.station })
    r:fact("licence", "consumed")
    cache_put(cache, l)
    log.info("Succeed to get License for Firmware from %s", o.licence.kind == "token" and "HSM" or
      o.licence.kind)
    return l
  end)

  local ok, err = pcall(function ()
    r:step("activate security", function ()
      log.info("Activating security...")
      ob.program(p, { SECURITY = 1 })
      log.info("Activating security Success")
    end)
    r:step("sfi write mode", function ()
      log.info("Setting write mode to SFI")
      ob.program(p, o.write_mode or { SECURITY = 1 })
      log.info("Succeed to set write mode for SFI")
    end)
    local s, rss = pack.sfi, pack.rss
    for i = start, #parts do
      r:step("part " .. i, function ()
        log.info("Starting SFI part %d", i)
        log.info("Writing license to address 0x%08X", s.license_addr)
        p:write(s.license_addr, lic)
        log.info("Writing Img header to address 0x%08X", s.header_addr)
        p:write(s.header_addr, img:header_bytes())
        log.info("Writing areas and areas wrapper...")
        p:write(s.header_addr + 28, img:part_bytes(i))
        if i == #parts then log.info("all areas processed") end
        log.info("RSS process started...")
        p:write32(rss.result, PENDING) -- so a result nobody wrote is never taken for one
        p:write32(rss.mailbox, rss.magic)
        flow.try(p.reset, p, "sw") -- the chip may drop the link while RSS runs
        log.info("Reconnecting...")
        flow.reconnect(p, o.reconnect or M.strategy("alternate", 6))
        local v = p:read32(rss.result)
        log.info("RSS command execution OK")
        log.info("RSS complete Value = %s", hex(v))
        if v == PENDING then
          errors.raise("TARGET", "sfi.rss", string.format("part %d: the RSS did not run (result " ..
            "word unchanged after the reset)", i))
        end
        local name = code_name(pack, v)
        local want = i == #parts and "ok" or "part_ok"
        if name ~= want then
          log.error("SECURITY State Fail")
          log.error("Invalid state after SFI install !")
          log.error("%s", RSS_TEXT[name] or ("unknown RSS result " .. hex(v)))
          if name == "license" then os.remove(cache) end
          local e = errors.new("TARGET", "sfi.rss", string.format("part %d: RSS complete value %s " ..
            "(%s)", i, hex(v), name or "unknown"), RSS_TEXT[name], 0)
          e.rss_result = v
          error(e, 0)
        end
        if ob.read(p).SECURITY ~= 1 then
          errors.raise("TARGET", "sfi.security", "SECURITY State Fail: SECURITY=0 after RSS")
        end
        log.info("SECURITY State Success")
        r:fact("parts_done", i)
      end)
    end
  end)
  if not ok then
    local a_ok, a_err = pcall(M.abort, p)
    if not a_ok then log.error("Abort failed: %s", tostring(a_err)) end
    r:fact("aborted", a_ok)
    if errors.is(err) then
      err.hint = err.hint or string.format("licence %s; chip %s", r.facts.licence,
        a_ok and "regressed to RDP level 0 (flash erased)" or "NOT regressed (abort failed)")
    end
    error(err, 0)
  end

  r:step("final state", function ()
    os.remove(cache) -- installed: the licence is spent
    local v = ob.read(p)
    log.info("SFI Process Finished!")
    show_ob(p)
    r:fact("rdp", v.RDP)
    r:fact("security", v.SECURITY)
    if o.verify then
      if v.RDP ~= 0xAA then
        log.warn("flash not compared: RDP 0x%02X blocks debug reads (as it should)", v.RDP)
        return
      end
      local f = io.open(o.verify, "rb")
      if not f then errors.raise("NOT_FOUND", "sfi.verify", "cannot read " .. o.verify) end
      local want = f:read("a")
      f:close()
      local base = pack.memory.flash[1].start
      local got = p:read(base, #want)
      if got ~= want then
        local at = 1
        while got:byte(at) == want:byte(at) do at = at + 1 end
        errors.raise("TARGET", "sfi.verify", string.format("flash differs from %s at 0x%08X",
          o.verify, base + at - 1))
      end
      log.info("Flash matches %s (%d bytes, sha256 %s)", o.verify, #want, core.sha256(want))
      r:fact("verified", true)
    end
  end)
end

return M
