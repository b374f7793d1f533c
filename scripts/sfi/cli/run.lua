--- sfi.cli.run: loads a recipe file, checks its parameters and runs it.
local errors = require "sfi.error"
local flow = require "sfi.flow"
local log = require "sfi.log"
local core = require "sfi.core"
local config = require "sfi.config"

local M = {}

--- M.load(path) -> descriptor. Raises USAGE for a missing file, a syntax error, an error
-- while loading, or a file that does not return flow.recipe{...}.
function M.load(path)
  local f = io.open(path, "rb")
  if not f then
    errors.raise("USAGE", nil, "cannot open recipe '" .. path .. "': no such file or not readable")
  end
  f:close()
  local chunk, lerr = loadfile(path, "t")
  if not chunk then errors.raise("USAGE", nil, "recipe does not load: " .. lerr) end
  local ok, desc = pcall(chunk)
  if not ok then
    if errors.is(desc) then error(desc, 0) end
    errors.raise("USAGE", nil, "recipe failed while loading: " .. tostring(desc))
  end
  if not flow.is_recipe(desc) then
    errors.raise("USAGE", nil, "recipe '" .. path .. "' must return flow.recipe{...}")
  end
  desc.path = path
  return desc
end

--- M.recipe(path, sets, opts) -> 0. Raises the recipe's error (the host reports it).
function M.recipe(path, sets, opts)
  if path:match("%.sfib$") then
    local bundle = require "sfi.bundle"
    return bundle.run_file(path, sets, opts)
  end
  local desc = M.load(path)
  return M.execute(desc, sets, opts)
end

--- M.execute(desc, sets, opts) -> 0: parses parameters, logs the start, runs, logs the result.
function M.execute(desc, sets, opts)
  for _, k in ipairs { "probe", "hsm" } do
    if opts[k] then
      if not desc.params[k] then
        errors.raise("USAGE", nil, string.format("recipe '%s' takes no '%s' parameter", desc.name, k))
      end
      if sets[k] == nil then sets[k] = opts[k] end
    end
  end
  config.journal = opts.journal or config.journal
  local args = desc:parse(sets)
  local v = core.versions()
  log.context { recipe = desc.name }
  log.event("start", { sfirun = v.sfirun, recipe = desc.name, recipe_version = desc.version,
      lua = v.lua, openssl = v.openssl },
    string.format("sfirun %s | recipe %s %s | %s | %s", v.sfirun, desc.name, desc.version,
      v.lua, v.openssl))
  local t0 = core.now_ms()
  local ok, err, r = flow.run(desc, args)
  local fields = { status = ok and "ok" or "fail", ms = core.now_ms() - t0 }
  for k, x in pairs(r.facts) do
    if type(x) ~= "table" then fields[k] = x end
  end
  if ok then
    log.event("result", fields, string.format("Recipe %s finished successfully", desc.name))
    return 0
  end
  if errors.is(err) then
    fields.code, fields.step = err.code, err.step
    -- The result event carries the facts (licence consumed, state); the host prints the error.
    log.event("result", fields, string.format("Recipe %s failed%s", desc.name,
      err.step and (" at step '" .. err.step .. "'") or ""), "error")
    err.reported = true
  end
  error(err, 0)
end

return M
