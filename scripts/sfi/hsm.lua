--- sfi.hsm: the licence HSM over PKCS#11 (SoftHSM2 in tests). A session is opened with an
-- RFC 7512 URI or with fields; the PIN comes from an environment variable (default
-- SFI_HSM_PIN) or a file, never from a Lua string. Every licence is journaled (sfi.journal).
local config = require "sfi.config"
local core = require "sfi.core.hsm"
local journal = require "sfi.journal"

local M = {}

local Session = {}
Session.__index = Session

local function raw(self)
  if not self._s then error("attempt to use a closed hsm session", 3) end
  return self._s
end

--- M.open{uri=} | M.open{module=, token=, pin_env=, pin_file=} -> session (use with <close>).
-- Raises USAGE (bad URI, pin-value), NOT_FOUND (module, token, PIN source), AUTH (wrong PIN),
-- LOCKED (PIN locked), NO_DEVICE.
function M.open(opts)
  if type(opts) == "string" then opts = { uri = opts } end
  if type(opts) ~= "table" then error("hsm.open: expected a table or a pkcs11: URI", 2) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if not o.lock_dir then
    o.lock_dir = config.state_dir() .. "/locks" -- used only when /run/lock is not writable
    pcall(require("sfi.core").mkdir, config.state_dir())
  end
  o.lock_timeout_ms = o.lock_timeout_ms or config.lock_timeout_ms
  local s = core.open(o)
  return setmetatable({ _s = s, journal = opts.journal }, Session)
end

--- h:close(): closes the session (idempotent).
function Session:close()
  if self._s then
    self._s:close()
    self._s = nil
  end
end
Session.__close = Session.close
Session.__gc = Session.close

function Session.__tostring(self)
  return self._s and "sfi.hsm.session (open)" or "sfi.hsm.session (closed)"
end

--- h:info() -> {state="empty"|"partial"|"provisioned", token, fwid, counter, counter_objects,
-- ca (64-byte X||Y)}. Raises on token errors.
function Session:info() return raw(self):info() end

--- h:counter() -> integer licences left. Raises NOT_FOUND when not provisioned.
function Session:counter() return raw(self):counter() end

--- h:provision{key=16B, nonce=12B|16B, fwid=, max=, ca=64B X||Y}: raises LOCKED when the
-- token is not empty, INVALID on bad fields.
function Session:provision(p)
  local nonce = p.nonce
  if type(nonce) == "string" and #nonce == 12 then nonce = nonce .. string.rep("\0", 4) end
  raw(self):provision { key = p.key, nonce = nonce, fwid = p.fwid, max = p.max, ca = p.ca }
end

--- M.identity(info) -> string: the token as the journal names it: "label/serial".
function M.identity(info)
  return info.token .. "/" .. (info.serial or "")
end

--- h:guard() -> lock (with <close>): the token's guard. Every operation on the token takes
-- it; hold it to keep a sequence of them (and journal writes) free of other requests from
-- the threads and processes of this station. Raises BUSY (held past config.lock_timeout_ms,
-- naming the holder), CANCELED.
function Session:guard() return raw(self):guard() end

local function hex(s) return (s:gsub(".", function (c) return string.format("%02x", c:byte()) end)) end

--- h:license(cert136, [meta]) -> licence136, counter_after. meta = {uid=, recipe=, station=,
-- journal=}. Under the token's guard: the counter is read, the journal's request row
-- written (with the request's tag), the licence made, a counter value spent and claimed
-- with the tag on the token, and the outcome row written, with no other request of this
-- station in between. A value that another station spent too releases nothing (withheld,
-- journaled in the row's detail) and the next one is tried. Raises FORMAT/AUTH (certificate;
-- counter unchanged), COUNTER (none left), NOT_FOUND (not provisioned), BUSY (guard or
-- journal held too long, or 5 values in a row spent by other stations too), token errors.
function Session:license(cert, meta)
  local s = raw(self)
  meta = meta or {}
  local _ <close> = s:guard()
  local info = s:info()
  local tag = core.new_tag()
  return journal.record({
    uid = meta.uid, cert = cert, fwid = info.fwid, recipe = meta.recipe, station = meta.station,
    provider = "token", token = M.identity(info), fields = meta.fields, tag = hex(tag),
    counter_before = info.counter, journal = meta.journal or self.journal,
    counter_on_error = function ()
      local ok, v = pcall(s.counter, s)
      return ok and v or nil
    end,
  }, function ()
    local lic, after, withheld = s:license(cert, tag)
    return lic, after, withheld > 0 and string.format("%d counter value(s) also spent by " ..
      "another station: withheld before this one", withheld) or nil
  end)
end

--- M.TAG_WINDOW: tags are kept for the counter values below counter + TAG_WINDOW only.
M.TAG_WINDOW = core.TAG_WINDOW

--- h:tags() -> { {value=, tag=hex}... }: the request tags on the token (each the counter
-- value a request spent; docs/hsm.md). Raises on token errors.
function Session:tags()
  local t = raw(self):tags()
  for _, e in ipairs(t) do e.tag = hex(e.tag) end
  return t
end

return M
