--- sfi.cli.run: loads a recipe file, checks its parameters and runs it.
local errors = require "sfi.error"
local flow = require "sfi.flow"
local log = require "sfi.log"
local core = require "sfi.core"
local config = require "sfi.config"
local pipeline = require "sfi.pipeline"
local util = require "sfi.util"

local M = {}

--- The largest recipe file read (a recipe is a page of Lua; the limit only stops a runaway read).
M.RECIPE_MAX = 4 * 1024 * 1024

--- M.load(path) -> descriptor. Raises USAGE for a missing file, a syntax error, an error
-- while loading, or a file that does not return flow.recipe{...}.
function M.load(path)
  if not util.stat(path) then
    errors.raise("USAGE", nil, "cannot open recipe '" .. path .. "': no such file or not readable")
  end
  -- a directory, FIFO or device is refused before anything is read; a recipe is Lua text
  local text = util.read_file(path, "recipe", M.RECIPE_MAX)
  local chunk, lerr = load(text, "@" .. path, "t")
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

local function print_plan(desc, r)
  local plan = r.plan or { recipe = desc.name, version = desc.version, steps = r.plan_steps }
  plan.version = plan.version or desc.version
  if log.json() then
    local head = {}
    for k, v in pairs(plan) do
      if k ~= "steps" and type(v) ~= "table" then head[k] = v end
    end
    if plan.image then
      for k, v in pairs(plan.image) do head["image_" .. k] = v end
    end
    log.event("plan", head, nil, "info")
    for n, s in ipairs(plan.steps) do
      log.event("plan_step", { n = n, step = s.name, depth = s.depth, irreversible = s.irreversible,
        optional = s.optional, replaced = s.replaced, wrapped = s.wrapped, doc = s.doc }, nil, "info")
    end
    return
  end
  local out = { string.format("Plan for recipe %s %s (nothing is opened: no probe, no HSM)",
    plan.recipe, plan.version) }
  local function kv(k, v) if v then out[#out + 1] = string.format("  %-10s: %s", k, v) end end
  kv("probe", plan.probe)
  kv("device", plan.device)
  kv("licence", plan.licence)
  kv("reconnect", plan.reconnect)
  kv("hash", plan.hash)
  kv("protocol", plan.protocol)
  for _, q in ipairs(plan.by_chip or {}) do kv("for a chip", q) end
  if plan.image then
    local im = plan.image
    kv("image", im.error and string.format("%s (not readable: %s)", im.path, im.error) or
      string.format("%s (protocol %d, %d areas, %d part%s)", im.path, im.protocol, im.areas,
        im.parts, im.parts == 1 and "" or "s"))
  end
  if plan.write_mode then
    local names = {}
    for k, v in pairs(plan.write_mode) do names[#names + 1] = string.format("%s=%s", k, v) end
    table.sort(names)
    kv("write mode", table.concat(names, " "))
  end
  if plan.problem then kv("PROBLEM", plan.problem) end
  out[#out + 1] = "Steps:"
  local n = 0
  for _, s in ipairs(plan.steps) do
    local marks = {}
    if s.irreversible then
      marks[#marks + 1] = "IRREVERSIBLE: " .. (pipeline.IRREVERSIBLE[s.irreversible] or s.irreversible)
    end
    if s.optional then marks[#marks + 1] = "optional" end
    if s.replaced then marks[#marks + 1] = "replaced by the recipe" end
    if s.wrapped then marks[#marks + 1] = "wrapped by the recipe" end
    local label
    if s.depth == 0 then
      n = n + 1
      label = string.format("  %2d  %-18s", n, s.name)
    else
      label = string.format("        %-16s", s.name)
    end
    local line = label .. (s.doc and (" " .. s.doc) or "")
    if #marks > 0 then line = line .. "  [" .. table.concat(marks, "; ") .. "]" end
    out[#out + 1] = line
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
end

--- M.plan(desc, sets) -> 0: prints the steps the recipe would run, with parameters
-- resolved, without opening the probe or the HSM (sfirun --plan).
function M.plan(desc, sets)
  local args = desc:parse(sets)
  local ok, err, r = flow.run(desc, args, "plan")
  if not ok then error(err, 0) end
  print_plan(desc, r)
  return 0
end

--- M.execute(desc, sets, opts) -> 0: parses parameters, logs the start, runs, logs the result
-- (or, with opts.plan, prints the plan).
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
  if opts.journal then require("sfi.util").check_output(opts.journal, "--journal") end
  if opts.plan then return M.plan(desc, sets) end
  local args = desc:parse(sets)
  local v = core.versions()
  log.context { recipe = desc.name, slot = os.getenv("SFIRUN_SLOT") or false }
  log.event("start", { sfirun = v.sfirun, recipe = desc.name, recipe_version = desc.version,
      lua = v.lua, openssl = v.openssl },
    string.format("sfirun %s | recipe %s %s | %s | %s", v.sfirun, desc.name, desc.version,
      v.lua, v.openssl))
  local t0 = core.now_ms()
  local ok, err, r = flow.run(desc, args)
  if args.push then -- after success or failure alike: the rows are written either way
    require("sfi.journal_db").push_quietly(args.push, { station = args.station })
  end
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
