--- sfi.flow: recipes, steps, retries and reconnect strategies.
-- A recipe file returns flow.recipe{name, version, params, run}; the host checks the
-- parameters before anything runs and then calls run(r, args) with a run context r.
-- r:step(name, fn, policy) runs one step: it logs, times and applies the policy
-- (retry on TIMEOUT/BUSY/IO, reconnect on NO_DEVICE, abort otherwise).
local core = require "sfi.core"
local cprobe = require "sfi.core.probe"
local errors = require "sfi.error"
local log = require "sfi.log"
local util = require "sfi.util"

local M = {}

--- M.sleep(ms): the sleep used by retries and reconnects (tests may replace it).
M.sleep = core.sleep_ms
--- M.now(): monotonic milliseconds (tests may replace it).
M.now = core.now_ms

-- {{{ parameters

local parse_int = util.parse_int

local BOOL <const> = { ["true"] = true, ["1"] = true, yes = true, on = true,
                       ["false"] = false, ["0"] = false, no = false, off = false }

-- Each converter takes a string (from --set) or a Lua value and returns value or nil, why.
local TYPES <const> = {
  string = function (v) if type(v) == "string" then return v end end,
  path = function (v) if type(v) == "string" and v ~= "" then return v end end,
  uri = function (v) if type(v) == "string" and v ~= "" then return v end end,
  integer = parse_int,
  number = function (v) return tonumber(v) end,
  boolean = function (v)
    if type(v) == "boolean" then return v end
    if type(v) == "string" then return BOOL[v:lower()] end
  end,
}

--- M.param_types(): the names of the parameter types recipes may declare.
function M.param_types()
  local t = {}
  for k in pairs(TYPES) do t[#t + 1] = k end
  table.sort(t)
  return t
end

local function normalize_param(name, spec)
  if type(spec) == "string" then spec = { type = spec } end
  if type(spec) ~= "table" then
    error(string.format("param '%s': spec must be a type string or a table", name), 4)
  end
  local p = {}
  for k, v in pairs(spec) do p[k] = v end
  local t = p.type or "string"
  if t:sub(-1) == "?" then t = t:sub(1, -2); p.optional = true end
  if not TYPES[t] then
    error(string.format("param '%s': unknown type '%s'", name, t), 4)
  end
  p.type = t
  p.name = name
  if p.default ~= nil then
    local v = TYPES[t](p.default)
    if v == nil then
      error(string.format("param '%s': default %s is not a %s", name, tostring(p.default), t), 4)
    end
    p.default = v
  end
  return p
end

local Recipe = { __name = "sfi.recipe" }
Recipe.__index = Recipe

--- M.recipe(desc) -> descriptor. desc = {name, version?, description?, params?, run}.
-- Raises a string on a malformed descriptor (a bug in the recipe).
function M.recipe(desc)
  if type(desc) ~= "table" then error("flow.recipe expects a table", 2) end
  if type(desc.name) ~= "string" or desc.name == "" then error("recipe needs a name", 2) end
  if type(desc.run) ~= "function" then error("recipe '" .. desc.name .. "' needs a run function", 2) end
  local r = setmetatable({
    name = desc.name,
    version = tostring(desc.version or "0"),
    description = desc.description or "",
    run = desc.run,
    params = {},
    order = {},
    bundle_permissions = desc.permissions,
  }, Recipe)
  for k in pairs(desc.params or {}) do r.order[#r.order + 1] = k end
  table.sort(r.order)
  for _, k in ipairs(r.order) do r.params[k] = normalize_param(k, desc.params[k]) end
  return r
end

--- M.is_recipe(x) -> boolean
function M.is_recipe(x)
  return getmetatable(x) == Recipe
end

local function usage(msg)
  errors.raise("USAGE", nil, msg)
end

--- descriptor:parse(values) -> args. values maps names to strings (from --set) or values.
-- Raises USAGE naming the parameter on an unknown name, a bad value or a missing one.
function Recipe:parse(values)
  local args = {}
  for k, v in pairs(values or {}) do
    local p = self.params[k]
    if not p then
      usage(string.format("recipe '%s' has no parameter '%s' (it takes: %s)", self.name, k,
        #self.order > 0 and table.concat(self.order, ", ") or "none"))
    end
    local x = TYPES[p.type](v)
    if x == nil then
      usage(string.format("parameter '%s' must be %s %s, got '%s'", k,
        p.type:match("^[aeiou]") and "an" or "a", p.type, tostring(v)))
    end
    if p.choices then
      local ok = false
      for _, c in ipairs(p.choices) do if c == x then ok = true end end
      if not ok then
        usage(string.format("parameter '%s' must be one of %s, got '%s'", k,
          table.concat(p.choices, ", "), tostring(x)))
      end
    end
    if (p.min and x < p.min) or (p.max and x > p.max) then
      usage(string.format("parameter '%s' must be in [%s, %s], got %s", k,
        tostring(p.min or "-inf"), tostring(p.max or "inf"), tostring(x)))
    end
    args[k] = x
  end
  for _, k in ipairs(self.order) do
    local p = self.params[k]
    if args[k] == nil then
      if p.default ~= nil then args[k] = p.default
      elseif not p.optional then
        usage(string.format("recipe '%s' needs parameter '%s' (%s): use --set %s=...",
          self.name, k, p.type, k))
      end
    end
  end
  return args
end

--- descriptor:describe() -> string: name, version and one line per parameter.
function Recipe:describe()
  local out = { string.format("%s %s", self.name, self.version) }
  if self.description ~= "" then out[#out + 1] = self.description end
  if #self.order == 0 then out[#out + 1] = "  (no parameters)" end
  for _, k in ipairs(self.order) do
    local p = self.params[k]
    local extra = {}
    if p.default ~= nil then extra[#extra + 1] = "default " .. tostring(p.default) end
    if p.optional then extra[#extra + 1] = "optional" end
    if p.choices then extra[#extra + 1] = "one of " .. table.concat(p.choices, "|") end
    out[#out + 1] = string.format("  %-16s %-8s %s%s", k, p.type, p.doc or "",
      #extra > 0 and (" [" .. table.concat(extra, ", ") .. "]") or "")
  end
  return table.concat(out, "\n")
end

-- }}}
-- {{{ retry and try

local DEFAULT_ON <const> = { TIMEOUT = true, BUSY = true, IO = true }
-- Never retried, whatever a policy says: the user stopped the run, or a bundle broke a
-- station limit or its sandbox (sfi.sandbox).
local FINAL <const> = { CANCELED = true, LIMIT = true, SANDBOX = true }

local function codeset(list)
  if list == nil then return DEFAULT_ON end
  local s = {}
  for _, c in ipairs(list) do if not FINAL[c] then s[c] = true end end
  return s
end

--- M.watch: nil, or function(event, step_name) told when a step "begin"s and "end"s (the
-- bundle runner uses it for --step-timeout). Set by the host, never by recipes.
M.watch = nil

--- M.try(fn, ...) -> results... | nil, err: turns an sfi.error into nil, err; other errors
-- (bugs) are raised again unchanged.
function M.try(fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  if errors.is(res[2]) then return nil, res[2] end
  error(res[2], 0)
end

-- {{{ reconnect / backoff policies

local Policy = { __name = "sfi.flow.policy" }
Policy.__index = Policy

local function oneof(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- What each kind of policy takes, and its defaults (the only place they are set).
local KINDS <const> = {
  fixed = { defaults = { tries = 5, delay_ms = 200 },
            fields = { tries = true, delay_ms = true, first_ms = true, connect_mode = true,
                       reset_kind = true } },
  backoff = { defaults = { tries = 5, base_ms = 100, factor = 2, max_ms = 5000 },
              fields = { tries = true, base_ms = true, factor = true, max_ms = true,
                         first_ms = true, connect_mode = true, reset_kind = true } },
  alternate = { defaults = { tries = 5, connect = { "hotplug", "normal" },
                             reset = { "none", "sw", "none", "hw" } },
                fields = { tries = true, connect = true, reset = true, pause = true,
                           first_ms = true } },
}

local function names_of(set)
  local t = {}
  for k in pairs(set) do t[#t + 1] = k end
  table.sort(t)
  return table.concat(t, ", ")
end

-- Checks a policy's fields when it is made, so a typo fails when the recipe is loaded or its
-- options are checked, not at the first reconnect after the RSS has started (and a licence has
-- been spent). Raises USAGE naming the field and what it takes, located at the caller's caller.
local function policy(kind, t)
  local function bad(fmt, ...)
    -- located at the recipe line: bad <- policy <- M.fixed/backoff/alternate <- caller
    error(errors.new("USAGE", "flow." .. kind, string.format(fmt, ...), nil, 4), 0)
  end
  if t ~= nil and type(t) ~= "table" then bad("policy options must be a table, got %s", type(t)) end
  t = t or {}
  local spec = KINDS[kind]
  for k in pairs(t) do
    if not spec.fields[k] then
      bad("%s policy: unknown field '%s' (it takes: %s)", kind, tostring(k), names_of(spec.fields))
    end
  end
  for k, v in pairs(spec.defaults) do
    if t[k] == nil then t[k] = type(v) == "table" and table.move(v, 1, #v, 1, {}) or v end
  end
  t.kind = kind
  if math.type(t.tries) ~= "integer" or t.tries < 1 then
    bad("policy tries must be a positive integer, got %s", tostring(t.tries))
  end
  for _, k in ipairs { "delay_ms", "base_ms", "max_ms", "first_ms" } do
    if t[k] ~= nil and (math.type(t[k]) ~= "integer" or t[k] < 0) then
      bad("policy %s must be a non-negative integer (ms), got %s", k, tostring(t[k]))
    end
  end
  if t.factor ~= nil and (type(t.factor) ~= "number" or t.factor < 1) then
    bad("policy factor must be a number >= 1, got %s", tostring(t.factor))
  end
  local resets = { "none" }
  for _, k in ipairs(cprobe.reset_kinds) do resets[#resets + 1] = k end
  for field, known in pairs { connect = cprobe.connect_modes, reset = resets } do
    local v = t[field]
    if v ~= nil then
      if type(v) ~= "table" or #v == 0 then bad("policy %s must be a non-empty list", field) end
      for _, x in ipairs(v) do
        if not oneof(known, x) then
          bad("policy %s: unknown %s '%s' (known: %s)", field,
            field == "connect" and "connect mode" or "reset kind", tostring(x),
            table.concat(known, ", "))
        end
      end
    end
  end
  for field, known in pairs { connect_mode = cprobe.connect_modes, reset_kind = resets } do
    if t[field] ~= nil and not oneof(known, t[field]) then
      bad("policy %s: unknown value '%s' (known: %s)", field, tostring(t[field]),
        table.concat(known, ", "))
    end
  end
  if t.pause ~= nil and getmetatable(t.pause) ~= Policy then bad("policy pause must be a policy") end
  return setmetatable(t, Policy)
end

--- M.fixed{tries=5, delay_ms=200, first_ms=, connect_mode=, reset_kind=} -> policy: the same
-- pause before every attempt. Every policy maker raises USAGE for an unknown field or a bad
-- value (naming it and what it takes).
function M.fixed(t) return policy("fixed", t) end

--- M.backoff{tries=5, base_ms=100, factor=2, max_ms=5000, first_ms=, connect_mode=,
-- reset_kind=} -> policy: growing pauses.
function M.backoff(t) return policy("backoff", t) end

--- M.alternate{tries=5, connect={"hotplug","normal"}, reset={"none","sw","none","hw"},
-- pause=policy, first_ms=} -> policy: cycles connect modes and reset kinds between attempts
-- (the user reports show chips that answer only after a different reset kind; "none"
-- attempts reach a chip that drops the link after every reset). pause defaults to M.backoff{}.
function M.alternate(t)
  local pol = policy("alternate", t)
  if pol.pause == nil then pol.pause = M.backoff() end
  return pol
end

--- policy:delay(n) -> ms to wait before attempt n (1-based).
function Policy:delay(n)
  if self.kind == "fixed" then return self.delay_ms end
  if self.kind == "backoff" then
    return math.min(self.max_ms, math.floor(self.base_ms * self.factor ^ (n - 1)))
  end
  return self.pause:delay(n)
end

--- policy:plan() -> { {n=, delay_ms=, connect=, reset=}... }: every attempt the policy makes;
-- delay_ms is the pause before it: the first attempt goes at once (or after first_ms), then
-- the policy's pauses 1, 2, ... come between attempts.
function Policy:plan()
  local out = {}
  for n = 1, self.tries do
    local a = { n = n, delay_ms = n == 1 and (self.first_ms or 0) or self:delay(n - 1) }
    if self.kind == "alternate" then
      a.connect = self.connect[(n - 1) % #self.connect + 1]
      a.reset = self.reset[(n - 1) % #self.reset + 1]
    else
      a.connect, a.reset = self.connect_mode, self.reset_kind
    end
    out[n] = a
  end
  return out
end

function Policy:__tostring()
  if self.kind == "fixed" then
    return string.format("fixed(%d x %d ms)", self.tries, self.delay_ms)
  elseif self.kind == "backoff" then
    return string.format("backoff(%d tries, %d ms x%g, max %d ms)", self.tries, self.base_ms,
      self.factor, self.max_ms)
  end
  return string.format("alternate(%d tries, connect %s, reset %s)", self.tries,
    table.concat(self.connect, "/"), table.concat(self.reset, "/"))
end

--- M.is_policy(x) -> boolean
function M.is_policy(x) return getmetatable(x) == Policy end

-- }}}

--- M.retry(opts, fn, ...) -> fn's results. opts = {tries=3, on={codes}, backoff=policy,
-- on_retry=function(n, err)}. Retries only sfi.errors whose code is in opts.on (default
-- TIMEOUT, BUSY, IO); raises the last error when the tries run out; bugs pass through.
function M.retry(opts, fn, ...)
  opts = opts or {}
  local tries = opts.tries or 3
  local on = codeset(opts.on)
  local pause = opts.backoff or M.backoff { tries = tries, base_ms = 50 }
  for n = 1, tries do
    local res = table.pack(pcall(fn, ...))
    if res[1] then return table.unpack(res, 2, res.n) end
    local err = res[2]
    if not errors.is(err) or not on[err.code] or n == tries then error(err, 0) end
    if opts.on_retry then opts.on_retry(n, err) end
    log.warn("%s: %s, retrying (%d/%d)", err.op or "operation", err.code, n + 1, tries)
    M.sleep(pause:delay(n))
  end
end

local RECONNECT_ON <const> = { NO_DEVICE = true, TIMEOUT = true, IO = true, TARGET = true }

--- M.reconnect(p, policy) -> attempt number. Calls p:reconnect{connect=, reset=} per the
-- policy's plan until it succeeds. Raises NO_DEVICE naming the strategy when none does;
-- other errors (AUTH, LOCKED, bugs) stop at once.
function M.reconnect(p, pol)
  pol = pol or M.backoff()
  if not M.is_policy(pol) then error("flow.reconnect: policy expected", 2) end
  local last
  for _, a in ipairs(pol:plan()) do
    if a.delay_ms > 0 then M.sleep(a.delay_ms) end
    local ok, err = pcall(p.reconnect, p, { connect = a.connect, reset = a.reset })
    if ok then
      log.event("reconnect", { attempt = a.n, connect = a.connect, reset = a.reset,
        status = "ok" }, "Reconnected !", "info")
      return a.n
    end
    if not errors.is(err) or not RECONNECT_ON[err.code] then error(err, 0) end
    last = err
    log.event("reconnect", { attempt = a.n, connect = a.connect, reset = a.reset,
      status = "fail", code = err.code },
      string.format("reconnect %d/%d failed (%s)%s", a.n, pol.tries, err.code,
        a.n < pol.tries and ", retrying..." or ""), "warn")
  end
  errors.raise("NO_DEVICE", "reconnect", string.format(
    "target did not answer after %d reconnect attempts (strategy %s)", pol.tries, tostring(pol)),
    last and errors.text(last) or nil)
end

-- }}}
-- {{{ the run context

local Run = { __name = "sfi.flow.run" }
Run.__index = Run

--- M.new_run(desc, args, [mode]) -> r: the run context handed to recipe.run (used by the
-- host). mode "plan" (sfirun --plan): steps are listed in r.plan_steps instead of run, and an
-- install pipeline leaves its plan in r.plan; "preflight" (sfirun preflight): an install
-- pipeline runs up to its preflight step, opening no HSM, and leaves the checks in r.checks.
function M.new_run(desc, args, mode)
  local planning = mode == "plan" or mode == true
  return setmetatable({ recipe = desc, args = args, steps = {}, owned = {}, facts = {},
    planning = planning or nil, plan_steps = planning and {} or nil,
    preflight_only = mode == "preflight" or nil }, Run)
end

--- r:own(x) -> x: closes x (x:close()) when the run ends, in reverse order.
function Run:own(x)
  self.owned[#self.owned + 1] = x
  return x
end

--- r:close(): closes what the run owns; never raises (failures are logged).
function Run:close()
  for i = #self.owned, 1, -1 do
    local x = self.owned[i]
    self.owned[i] = nil
    local ok, err = pcall(function () x:close() end)
    if ok then
      log.debug("closed %s", tostring(x))
    else
      log.warn("closing %s failed: %s", tostring(x), tostring(err))
    end
  end
end

--- r:probe(cfg) -> probe: opens a probe (sfi.probe.open), owned by the run and used by
-- step reconnect policies. Raises USAGE while planning (a plan never opens a probe).
function Run:probe(cfg)
  if self.planning then
    errors.raise("USAGE", "plan", "the recipe opens a probe outside its steps: it cannot be planned")
  end
  local probe = require "sfi.probe"
  local p = probe.open(cfg)
  self.probe = self:own(p)
  return p
end

--- r:fact(k, v): records a fact for the final result (licence consumed, final RDP...).
function Run:fact(k, v)
  self.facts[k] = v
end

local function summarize(err)
  if errors.is(err) then return err.code, err.msg end
  return "BUG", tostring(err)
end

--- r:step(name, fn, policy) -> fn's results. fn receives r. policy = {retry=n|{tries, on,
-- backoff}, reconnect=policy (on NO_DEVICE: reconnect r.probe, then try the step again),
-- optional=true (a failure is logged and the step returns nil, err)}.
-- Raises the step's error with err.step = name.
function Run:step(name, fn, pol)
  pol = pol or {}
  if self.planning then -- sfirun --plan: list the step, run nothing
    self.plan_steps[#self.plan_steps + 1] = { name = name, depth = 0 }
    return nil
  end
  local retry = pol.retry
  if type(retry) == "number" then retry = { tries = retry } end
  local tries = retry and retry.tries or 1
  local on = codeset(retry and retry.on)
  local pause = retry and retry.backoff or M.backoff { tries = tries, base_ms = 50 }
  local rec = { name = name, status = "running", attempts = 0 }
  self.steps[#self.steps + 1] = rec
  self.current = name
  local t0 = M.now()
  log.event("step", { step = name, status = "begin" }, nil, "debug")
  local watch = M.watch
  if watch then watch("begin", name) end
  local reconnects = 0
  while true do
    rec.attempts = rec.attempts + 1
    local res = table.pack(pcall(fn, self))
    if res[1] then
      if watch then watch("end", name) end
      rec.status, rec.ms = "ok", M.now() - t0
      log.event("step", { step = name, status = "ok", ms = rec.ms, attempts = rec.attempts },
        string.format("step %s: ok (%d ms)", name, rec.ms), "info")
      self.current = nil
      return table.unpack(res, 2, res.n)
    end
    local err = res[2]
    local again = false
    if errors.is(err) then
      if FINAL[err.code] then
        again = false
      elseif err.code == "NO_DEVICE" and pol.reconnect and self.probe and reconnects < 1 then
        reconnects = reconnects + 1
        local ok, rerr = pcall(M.reconnect, self.probe, pol.reconnect)
        if ok then again = true else err = rerr end
      elseif on[err.code] and rec.attempts < tries then
        log.warn("step %s: %s, retrying (%d/%d)", name, err.code, rec.attempts + 1, tries)
        M.sleep(pause:delay(rec.attempts))
        again = true
      end
    end
    if not again then
      if watch then watch("end", name) end
      local code, msg = summarize(err)
      rec.status, rec.ms, rec.code = "fail", M.now() - t0, code
      log.event("step", { step = name, status = "fail", ms = rec.ms, code = code,
        attempts = rec.attempts }, string.format("step %s failed: %s", name, msg), "error")
      errors.wrap(err, { step = name })
      self.current = nil
      if pol.optional then return nil, err end
      error(err, 0)
    end
  end
end

--- M.run(desc, args, [mode]) -> ok, err, r: runs a parsed recipe (or plans it or runs its
-- preflight, see new_run); closes what it owns either way.
function M.run(desc, args, mode)
  local r = M.new_run(desc, args, mode)
  local ok, err = xpcall(desc.run, function (e)
    r.traceback = debug.traceback("traceback:", 2)
    M.last_traceback = r.traceback
    return e
  end, r, args)
  r:close()
  return ok, err, r
end

-- }}}

return M
