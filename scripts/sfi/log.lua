--- sfi.log: the event log. Human lines read like ST's tool; with --json every call is one
-- JSON object per line with the stable keys ts, level, event, msg plus its own fields.
-- Context fields (device UID, recipe, bundle) set with log.context are added to events.
-- Never pass secrets (PINs, keys) to the log.
local core = require "sfi.core"

local M = {}

local context = {}

local function say(level, fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
  if next(context) then
    core.event(level, "log", context, msg)
  else
    core.log(level, msg)
  end
end

--- M.error/warn/info/debug/trace(fmt, ...): a free-text line (string.format rules).
function M.error(fmt, ...) say("error", fmt, ...) end
function M.warn(fmt, ...) say("warn", fmt, ...) end
function M.info(fmt, ...) say("info", fmt, ...) end
function M.debug(fmt, ...) say("debug", fmt, ...) end
function M.trace(fmt, ...) say("trace", fmt, ...) end

--- M.event(name, fields, [msg], [level]): a structured event; context fields are added.
function M.event(name, fields, msg, level)
  local all = {}
  for k, v in pairs(context) do all[k] = v end
  for k, v in pairs(fields or {}) do all[k] = v end
  core.event(level or "info", name, all, msg)
end

--- M.context(fields): merges fields into every later event (false removes a key).
function M.context(fields)
  for k, v in pairs(fields) do
    if v == false then context[k] = nil else context[k] = v end
  end
end

--- M.configure{level=, format=}: "error".."trace"; "human" or "json".
function M.configure(opts) core.set_log(opts) end

--- M.json() -> boolean: the log writes JSON lines.
function M.json()
  local _, fmt = core.get_log()
  return fmt == "json"
end

--- M.level() -> string: the current level name.
function M.level()
  return (core.get_log())
end

return M
