--- sfi.pipeline: an ordered list of named steps that a recipe edits before it runs.
-- A step is a table {name, run = function (c) ... end, doc, irreversible, optional, needs,
-- provides, policy, options, aborts, on_failure, steps}. `run` gets the context table c that
-- every step shares (c.r is the run context, c.o the options; steps read what earlier steps
-- provided and add their own).
-- A recipe inserts a step before or after a named one, replaces one, wraps one (runs code
-- around it), removes an optional one or changes its options; `plan()` lists the steps
-- without running anything, so `sfirun --plan` can show them. A pipeline may hold nested
-- pipelines (the install's per-part steps): the editing methods find a name at any depth.
local M = {}

--- M.IRREVERSIBLE: what an irreversible step can do that cannot be undone.
M.IRREVERSIBLE = {
  licence = "consumes a licence from the HSM counter",
  rdp = "raises the readout protection (RDP) level",
  erase = "erases flash (an RDP regression or a mass erase)",
  program = "programs flash or option bytes through the RSS",
}

local P = { __name = "sfi.pipeline" }
P.__index = P

local function bug(fmt, ...) error(string.format(fmt, ...), 3) end

local FIELDS <const> = { name = "string", run = "function", doc = "string", optional = "boolean",
  irreversible = "string", needs = "table", provides = "table", policy = "table",
  steps = "table", options = "table", aborts = "boolean", on_failure = "boolean",
  replaced = "boolean", wrapped = "number" }

local function check_step(s)
  if type(s) ~= "table" then bug("a step must be a table, got %s", type(s)) end
  if type(s.name) ~= "string" or s.name == "" then bug("a step needs a name") end
  for k, v in pairs(s) do
    if FIELDS[k] == nil then bug("step '%s': unknown field '%s'", s.name, tostring(k)) end
    if type(v) ~= FIELDS[k] then bug("step '%s': %s must be a %s", s.name, k, FIELDS[k]) end
  end
  if not s.run then bug("step '%s' needs a run function", s.name) end
  if s.irreversible and not M.IRREVERSIBLE[s.irreversible] then
    local kinds = {}
    for k in pairs(M.IRREVERSIBLE) do kinds[#kinds + 1] = k end
    table.sort(kinds)
    bug("step '%s': irreversible must be one of %s", s.name, table.concat(kinds, ", "))
  end
  return s
end

--- M.new(steps) -> pipeline. steps is a list of step tables (see above); a step may carry
-- `steps`, a nested pipeline that its own run function runs (e.g. once per image part).
-- Raises a string (a bug) on a malformed step or a duplicate name.
function M.new(steps)
  local pl = setmetatable({ list = {} }, P)
  for _, s in ipairs(steps or {}) do pl:append(s) end
  return pl
end

-- Finds name at any depth: returns the pipeline holding it and the index.
local function locate(pl, name)
  for i, s in ipairs(pl.list) do
    if s.name == name then return pl, i end
    if s.steps then
      local sub, j = locate(s.steps, name)
      if sub then return sub, j end
    end
  end
end

local function names(pl, out)
  for _, s in ipairs(pl.list) do
    out[#out + 1] = s.name
    if s.steps then names(s.steps, out) end
  end
  return out
end

--- pl:names() -> {name...} in order, nested steps after their parent.
function P:names() return names(self, {}) end

local function must(pl, name)
  local at, i = locate(pl, name)
  if not at then
    bug("no step '%s' in the pipeline (steps: %s)", tostring(name), table.concat(pl:names(), ", "))
  end
  return at, i
end

local function add(pl, at, i, s)
  check_step(s)
  if s.steps and getmetatable(s.steps) ~= P then s.steps = M.new(s.steps) end
  local root = pl.root or pl
  if locate(root, s.name) then bug("the pipeline already has a step '%s'", s.name) end
  if s.steps then s.steps.root = root end
  table.insert(at.list, i, s)
end

--- pl:find(name) -> step | nil (at any depth).
function P:find(name)
  local at, i = locate(self, name)
  return at and at.list[i] or nil
end

--- pl:append(step): adds a step at the end of this pipeline.
function P:append(s) add(self, self, #self.list + 1, s); return self end

--- pl:insert_before(name, step) / pl:insert_after(name, step): adds a step next to a named
-- one (in the same nested pipeline). Raises a string for an unknown name.
function P:insert_before(name, s)
  local at, i = must(self, name)
  add(self, at, i, s)
  return self
end

function P:insert_after(name, s)
  local at, i = must(self, name)
  add(self, at, i + 1, s)
  return self
end

--- pl:replace(name, fn | step): a function replaces the step's run and keeps its name,
-- doc and marks; a table replaces the whole step (its name may differ).
function P:replace(name, by)
  local at, i = must(self, name)
  local old = at.list[i]
  if type(by) == "function" then
    old.run = by
    old.replaced = true
    return self
  end
  table.remove(at.list, i)
  local ok, err = pcall(add, self, at, i, by)
  if not ok then table.insert(at.list, i, old); error(err, 2) end
  by.replaced = true
  return self
end

--- pl:wrap(name, fn): fn(c, inner) runs instead of the step; inner(c) runs the step as it
-- was (call it zero, one or several times). Wraps nest: the last wrap is the outermost.
function P:wrap(name, fn)
  if type(fn) ~= "function" then bug("wrap '%s': a function expected", tostring(name)) end
  local at, i = must(self, name)
  local s = at.list[i]
  local inner = s.run
  s.run = function (c) return fn(c, inner) end
  s.wrapped = (s.wrapped or 0) + 1
  return self
end

--- pl:remove(name): removes an optional step. Raises a string for a step the flow needs.
function P:remove(name)
  local at, i = must(self, name)
  if not at.list[i].optional then
    bug("step '%s' is not optional: replace or wrap it instead", name)
  end
  table.remove(at.list, i)
  return self
end

--- pl:set(name, fields): changes a step's options (merged into step.options) and, with
-- `policy` in fields, its retry/reconnect policy. Returns the pipeline.
function P:set(name, fields)
  local at, i = must(self, name)
  local s = at.list[i]
  for k, v in pairs(fields) do
    if k == "policy" then s.policy = v
    else
      s.options = s.options or {}
      s.options[k] = v
    end
  end
  return self
end

--- pl:check(have) -> true | false, why: every step's needs are provided by the initial
-- context keys (have) or by an earlier step.
function P:check(have)
  local known = {}
  for _, k in ipairs(have or {}) do known[k] = true end
  local function walk(pl)
    for _, s in ipairs(pl.list) do
      for _, k in ipairs(s.needs or {}) do
        if not known[k] then
          return false, string.format("step '%s' needs '%s', which no earlier step provides", s.name, k)
        end
      end
      for _, k in ipairs(s.provides or {}) do known[k] = true end
      if s.steps then
        local ok, why = walk(s.steps)
        if not ok then return false, why end
      end
    end
    return true
  end
  return walk(self)
end

--- pl:plan() -> { {name, depth, doc, irreversible, optional, replaced, wrapped, options,
-- needs, provides}... }: the steps in order, nested ones with depth 1.
function P:plan()
  local out = {}
  local function walk(pl, depth)
    for _, s in ipairs(pl.list) do
      out[#out + 1] = { name = s.name, depth = depth, doc = s.doc, irreversible = s.irreversible,
        optional = s.optional or nil, replaced = s.replaced or nil, wrapped = s.wrapped,
        options = s.options, needs = s.needs, provides = s.provides }
      if s.steps then walk(s.steps, depth + 1) end
    end
  end
  walk(self, 0)
  return out
end

--- pl:each() -> iterator over this level's steps (not nested ones).
function P:each()
  local i = 0
  return function ()
    i = i + 1
    return self.list[i]
  end
end

--- M.is(x) -> boolean
function M.is(x) return getmetatable(x) == P end

return M
