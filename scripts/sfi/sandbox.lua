--- sfi.sandbox: runs a signed bundle's Lua in a Lua state of its own (sfi.core.sandbox) and
-- hands it capability wrappers of the library instead of the library itself.
-- * Nothing is shared: values crossing between the bundle and the library are copied; library
--   objects reach the bundle as opaque proxies (every field read goes through M.policy);
--   functions cross as proxies. The bundle cannot reach, let alone patch, a library table.
-- * Paths the bundle names: only values the operator typed (--set) for parameters the
--   manifest permits (read:PARAM, write:PARAM), or files below such a directory. A default
--   the bundle declares allows nothing. Probes, tokens and licence programs: only the
--   station's, exactly as the operator typed them. A refusal says "denied", nothing more.
-- * While the bundle runs, sfi.guard checks what the library itself opens on its behalf.
-- * Limits (instructions, CPU, memory, step and run wall time) are the station's.
-- * The first SANDBOX or LIMIT error is the run's result: the bundle cannot catch it away.
-- See docs/bundles.md.
local core = require "sfi.core.sandbox"
local score = require "sfi.core"
local errors = require "sfi.error"
local guard = require "sfi.guard"

local M = {}

local MIB <const> = 1024 * 1024

--- M.DEFAULTS: the station's limits when the command line sets none.
M.DEFAULTS = { max_instructions = 500000000, max_cpu = 10, max_memory = 256 * MIB,
  step_timeout = 600, run_timeout = 3600 }

--- M.LIBRARY: the sfi.* modules a bundle may require, each as a table of the functions it
-- gets: true (no file, probe, token or program named by the caller), or a checker called
-- with the policy and the arguments. A function not listed is refused.
M.LIBRARY = {}

-- {{{ limits

local SUFFIX <const> = { [""] = 1, k = 1000, K = 1000, m = 1000000, M = 1000000,
  g = 1000000000, G = 1000000000 }
local MEM_SUFFIX <const> = { [""] = 1, k = 1024, K = 1024, m = MIB, M = MIB, g = 1024 * MIB,
  G = 1024 * MIB }

local function count(s, opt, suffixes)
  if s == nil then return nil end
  local num, suf = tostring(s):match("^(%d+)([kKmMgG]?)i?B?$")
  local v = num and math.tointeger(tonumber(num)) * suffixes[suf]
  if not v or v <= 0 then
    errors.raise("USAGE", nil, string.format("%s expects a positive count such as 500M, got '%s'",
      opt, tostring(s)))
  end
  return v
end

local function seconds(s, opt)
  if s == nil then return nil end
  local v = tonumber(s)
  if not v or v <= 0 or v ~= v then
    errors.raise("USAGE", nil, string.format("%s expects a positive number of seconds, got '%s'",
      opt, tostring(s)))
  end
  return v
end

--- M.limits(opts) -> {max_instructions, max_cpu, max_memory, step_timeout, run_timeout} from
-- command-line options (strings such as "500M", "256M", "10"), defaults for the rest.
-- Raises USAGE naming the option for a bad value.
function M.limits(opts)
  opts = opts or {}
  local d = M.DEFAULTS
  return {
    max_instructions = count(opts.max_instructions, "--max-instructions", SUFFIX) or d.max_instructions,
    max_cpu = seconds(opts.max_cpu, "--max-cpu") or d.max_cpu,
    max_memory = count(opts.max_memory, "--max-memory", MEM_SUFFIX) or d.max_memory,
    step_timeout = seconds(opts.step_timeout, "--step-timeout") or d.step_timeout,
    run_timeout = seconds(opts.run_timeout, "--run-timeout") or d.run_timeout,
  }
end

-- }}}
-- {{{ the station's policy

local function below(path, dir)
  if dir == "" or path:sub(1, #dir + 1) ~= dir .. "/" then return false end
  local rest = path:sub(#dir + 2)
  return rest ~= "" and not ("/" .. rest .. "/"):find("/%.%.?/")
end

local function words(s)
  local ok, w = pcall(function () return require("sfi.license").split_words(s) end)
  if ok and type(w) == "table" then return w end
  local out = {}
  for x in s:gmatch("%S+") do out[#out + 1] = x end
  return out
end

--- M.station(man, sets, opts) -> policy: what this run allows. man: the verified manifest;
-- sets: the values the operator typed (--set); opts: the command line (probe, hsm, journal).
-- policy.bundle_path(access, path) (what the bundle may name), policy.allow_path(access,
-- path) (what the library may open for it), allow_probe, allow_hsm, allow_program: see
-- sfi.guard.
function M.station(man, sets, opts)
  sets, opts = sets or {}, opts or {}
  local typed = {}
  for _, v in pairs(sets) do if type(v) == "string" and v ~= "" then typed[v] = true end end
  for _, k in ipairs { "probe", "hsm", "journal" } do
    if type(opts[k]) == "string" then typed[opts[k]] = true end
  end
  -- the station's probe, token and licence program: exactly as the operator typed them
  local station = { probe = opts.probe or sets.probe, hsm = opts.hsm or sets.hsm,
    command = sets.licence_command, journal = opts.journal }
  -- files the station's own probe URI names (its sim state file, a recording)
  local probe_files = {}
  local okp, pu = pcall(function () return require("sfi.probe").parse_uri(station.probe) end)
  if okp and type(pu) == "table" then
    for k, v in pairs(pu.faults or {}) do
      if guard.PROBE_PATHS[k] then
        -- the file, the check that its directory takes it (sfi.probe), and that directory
        probe_files[v] = true
        probe_files[v .. ".tmp.check"] = true
        probe_files[v:match("^(.*)/[^/]*$") or "."] = "dir"
      end
    end
  end
  local state_dir = require("sfi.config").state_dir()
  local host = package.loaded["sfi.core.host"]
  local root = host and host.root or nil
  local pol = { typed = typed, refuse = nil }

  function pol.bundle_path(access, path)
    if type(path) ~= "string" or path == "" then return false end
    for _, p in ipairs(man.permits or {}) do
      local v = sets[p.param]
      if type(v) == "string" and v ~= "" and (p.access == access or p.access == "write") then
        if path == v or below(path, v) then return true end
      end
    end
    return false
  end

  function pol.allow_path(access, path)
    if pol.bundle_path(access == "dir" and "write" or access, path) then return true end
    -- the files the operator named (image, licence, key...) are the library's to read, not
    -- to write: writing is for the state directory and write-permitted parameters only
    if access == "read" and typed[path] then return true end
    local pf = probe_files[path]
    if pf == true or (pf == "dir" and access == "read") or path == station.journal then return true end
    if below(path, state_dir) or path == state_dir then return true end
    if access == "read" and root and (below(path, root .. "/vendor") or below(path, root .. "/scripts")) then
      return true
    end
    if access == "read" and path == "/etc/hostname" then return true end
    return access ~= "read" and below(path, "/run/lock")
  end

  function pol.allow_probe(cfg)
    if cfg.driver == "sim" then return true end -- a simulated chip: its file knobs are checked
    local ok, u = pcall(require("sfi.probe").parse_uri, station.probe)
    if not ok or u.driver ~= cfg.driver then return false, "not the station's probe" end
    if cfg.driver == "gdb" then -- the same server (host and port, or serial device)
      local okg, g = pcall(function () return require("sfi.gdb").parse(u.target or "", u.faults) end)
      local c = type(cfg.gdb) == "table" and cfg.gdb or {}
      if okg and g.host == c.host and g.tty == c.tty and g.port == c.port then return true end
      return false, "not the station's probe"
    end
    if u.serial == cfg.serial and u.port == cfg.port then return true end
    return false, "not the station's probe"
  end

  local HSM_FIELDS <const> = { "module", "module_env", "pin", "pin_env", "pin_file", "token",
    "serial" }
  function pol.allow_hsm(cfg)
    if type(cfg) ~= "table" or type(cfg.uri) ~= "string" or cfg.uri ~= station.hsm then
      return false, "not the station's token"
    end
    for _, k in ipairs(HSM_FIELDS) do
      if cfg[k] ~= nil then return false, "the token's " .. k .. " comes from the station" end
    end
    return true
  end

  function pol.allow_program(argv)
    if type(station.command) ~= "string" then return false end
    local w = words(station.command)
    if #w ~= #argv or w[1] ~= argv[1] then return false end
    for i = 2, #w do
      if w[i] ~= argv[i] and not w[i]:find("{", 1, true) then return false end
    end
    return true
  end

  function pol.probe_uri(uri)
    return type(uri) == "string" and uri == station.probe
  end

  return pol
end

-- }}}
-- {{{ capability wrappers

local function refuse(pol, op, msg)
  local e = errors.new("SANDBOX", op, msg, nil, 0)
  if pol and pol.violate then e = pol.violate(e) end
  error(e, 0)
end

local function path_arg(access, i)
  return function (pol, op, ...)
    local p = select(i, ...)
    if not pol.bundle_path(access, p) then refuse(pol, op, "denied") end
  end
end

local READ1 <const> = path_arg("read", 1)
local WRITE1 <const> = path_arg("write", 1)

local BUILD_PATHS <const> = { "out", "key", "nonce", "ob", "file", "path" }

local function check_build(pol, op, opts)
  if type(opts) ~= "table" then return end
  for _, k in ipairs(BUILD_PATHS) do
    local v = opts[k]
    if type(v) == "string" and not pol.bundle_path(k == "out" and "write" or "read", v) then
      refuse(pol, op, "denied")
    end
  end
  for _, f in ipairs(type(opts.firmware) == "table" and opts.firmware or {}) do
    if type(f) == "table" and f.file ~= nil and not pol.bundle_path("read", f.file) then
      refuse(pol, op, "denied")
    end
  end
end

local PROBE_OPTS <const> = { uri = true, connect = true, reset = true, speed_khz = true }

local function check_probe(pol, op, cfg)
  if type(cfg) == "string" then cfg = { uri = cfg } end
  if type(cfg) ~= "table" or not pol.probe_uri(cfg.uri) then
    refuse(pol, op, "not the station's probe (the operator's --probe URI, exactly)")
  end
  for k in pairs(cfg) do
    if not PROBE_OPTS[k] then refuse(pol, op, "probe option '" .. tostring(k) .. "' is not allowed") end
  end
end

local function check_hsm(pol, op, cfg)
  if type(cfg) == "string" then cfg = { uri = cfg } end
  local ok, why = pol.allow_hsm(cfg)
  if not ok then refuse(pol, op, why) end
  for k in pairs(cfg) do
    if k ~= "uri" then refuse(pol, op, "hsm option '" .. tostring(k) .. "' is not allowed") end
  end
end

local function secret_arg(pol, op, v)
  if type(v) == "string" and not pol.bundle_path("read", v) then refuse(pol, op, "denied") end
end

local ALL <const> = setmetatable({}, { __index = function () return true end })

M.LIBRARY["sfi.flow"] = { sleep = true, now = true, param_types = true, recipe = true,
  is_recipe = true, try = true, fixed = true, backoff = true, alternate = true, is_policy = true,
  retry = true, reconnect = true }
M.LIBRARY["sfi.log"] = { error = true, warn = true, info = true, debug = true, trace = true,
  event = true, json = true, level = true,
  context = function (pol, op, fields)
    for k in pairs(type(fields) == "table" and fields or {}) do
      if k == "bundle" or k == "bundle_version" or k == "signer" then
        refuse(pol, op, "changing the log context field '" .. k .. "' is not allowed in a bundle")
      end
    end
  end }
M.LIBRARY["sfi.error"] = ALL
M.LIBRARY["sfi.device"] = ALL
M.LIBRARY["sfi.ob"] = ALL
M.LIBRARY["sfi.sfi"] = ALL
M.LIBRARY["sfi.probe"] = { parse_uri = true, list = true, open = check_probe }
M.LIBRARY["sfi.image"] = { parse = true, flash_for = true, load = READ1, obcsv = READ1,
  write = WRITE1, secret = secret_arg, build = check_build }
M.LIBRARY["sfi.hsm"] = { identity = true, open = check_hsm }
M.LIBRARY["sfi.license"] = { parse_cert = true, verify_cert = true, parse = true,
  on_curve = true, open = true, make_cert = true, make_soft = true, chip_identity = true,
  split_words = true, st_hsm = true, provider = true, load_key = READ1, read_secret = READ1,
  read_nonce = READ1 }
M.LIBRARY["sfi.util"] = { dirname = true, json = true, json_flat = true, write_file = WRITE1,
  read_file = READ1, stat = READ1, check_output = WRITE1 }

-- The table a bundle gets for `require(name)`: the module's data, and its functions wrapped
-- with their checks (a function not listed raises SANDBOX).
local function wrap_module(pol, name, mod)
  local list = M.LIBRARY[name]
  local out = {}
  for k, v in pairs(mod) do
    if type(v) == "function" then
      local check = list[k]
      local op = name:gsub("^sfi%.", "") .. "." .. k
      if check == true then
        out[k] = v
      elseif check then
        out[k] = function (...)
          check(pol, op, ...)
          return v(...)
        end
      else
        out[k] = function () refuse(pol, op, name .. "." .. k .. " is not allowed in a bundle") end
      end
    elseif type(k) == "string" and k:sub(1, 1) ~= "_" then
      out[k] = v
    end
  end
  return out
end

-- }}}
-- {{{ object proxies

-- Methods of library classes that take something the station must check.
local METHODS <const> = {
  ["sfi.flow.run"] = { probe = function (pol, op, _, cfg) check_probe(pol, op, cfg) end },
}
-- Classes whose fields a bundle may set (the install pipeline's per-device context: a step
-- records what it found, e.g. c.serial).
local WRITABLE <const> = { ["sfi.install.context"] = true }

local function class_of(obj)
  if io.type(obj) then return "file" end
  local mt = getmetatable(obj)
  local n = type(mt) == "table" and rawget(mt, "__name")
  return type(n) == "string" and n or type(obj)
end

--- M.policy(pol) -> function(event, obj, ...): what a bundle may do with a library object's
-- proxy. Field names starting with '_' are never read or written; methods in METHODS are
-- wrapped; only WRITABLE classes take new fields (never over a method).
function M.policy(pol)
  local wrapped = setmetatable({}, { __mode = "k" })
  return function (event, obj, k, v)
    local class = class_of(obj)
    if event == "index" then
      if type(k) ~= "string" or k:sub(1, 1) == "_" then
        refuse(pol, "bundle", "reading " .. class .. "." .. tostring(k) .. " is not allowed in a bundle")
      end
      local val = obj[k]
      local check = METHODS[class] and METHODS[class][k]
      if check and type(val) == "function" then
        local w = wrapped[val]
        if not w then
          w = function (...)
            check(pol, class .. ":" .. k, ...)
            return val(...)
          end
          wrapped[val] = w
        end
        return w
      end
      return val
    elseif event == "newindex" then
      local ok = WRITABLE[class] and type(k) == "string" and k:sub(1, 1) ~= "_"
        and type(obj[k]) ~= "function"
      if not ok then
        refuse(pol, "bundle", "changing " .. class .. "." .. tostring(k) .. " is not allowed in a bundle")
      end
      obj[k] = v
      return
    elseif event == "tostring" then
      return tostring(obj)
    elseif event == "len" then
      return #obj
    elseif event == "eq" then
      return rawequal(obj, k)
    elseif event == "close" then
      local c = obj.close
      if type(c) == "function" then c(obj) end
      return
    end
    refuse(pol, "bundle", "'" .. event .. "' on " .. class .. " is not allowed in a bundle")
  end
end

-- }}}
-- {{{ the bundle's state

-- Runs first in the bundle's own state: its globals (io, os, require...) come from the
-- capabilities; what the standard libraries have that a bundle must not use is removed.
local PRELUDE <const> = [==[
local caps = ...
local type, tostring, rawget, next = type, tostring, rawget, next
local load0, setmetatable0, getmetatable0 = load, setmetatable, getmetatable
local collect0 = collectgarbage
local deny = caps.deny
load = function (chunk, name, mode, env)
  if mode ~= nil and mode ~= "t" then deny("load in mode '" .. tostring(mode) .. "'") end
  if type(chunk) == "string" and chunk:byte(1) == 27 then deny("load with a binary chunk") end
  if env == nil then return load0(chunk, name, "t") end
  return load0(chunk, name, "t", env)
end
setmetatable = function (t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then deny("a __gc metamethod") end
  return setmetatable0(t, mt)
end
getmetatable = function (o)
  if type(o) == "string" then return nil end
  return getmetatable0(o)
end
string.dump = function () deny("string.dump") end
local GC = { collect = true, count = true, step = true, isrunning = true }
collectgarbage = function (opt, ...)
  if opt == nil or GC[opt] then return collect0(opt, ...) end
  deny("collectgarbage('" .. tostring(opt) .. "')")
end
local function forbidden(name, allowed)
  return setmetatable0({}, {
    __index = function (_, k)
      if allowed and allowed[k] ~= nil then return allowed[k] end
      deny(name .. "." .. tostring(k))
    end,
    __newindex = function (_, k) deny("changing " .. name .. "." .. tostring(k)) end,
    __metatable = false,
  })
end
debug = forbidden("debug")
package = forbidden("package", { config = caps.package_config })
dofile = function () deny("dofile") end
loadfile = function () deny("loadfile") end
io, os = caps.io, caps.os
local loaded = {}
local function readonly(name, t)
  return setmetatable0({}, {
    __index = t,
    __newindex = function (_, k) deny("changing " .. name .. "." .. tostring(k)) end,
    __pairs = function () return next, t, nil end,
    __metatable = false,
  })
end
local function run_source(src, chunkname, modname, path)
  local f, err = load0(src, chunkname, "t")
  if not f then caps.bad_member(err) end
  return f(modname, path)
end
require = function (name)
  if type(name) ~= "string" then error("bad argument #1 to 'require' (string expected)", 2) end
  local hit = loaded[name]
  if hit ~= nil then return hit end
  local kind, v, chunkname, path = caps.find(name)
  if kind == "lib" then
    v = readonly(name, v)
  else
    loaded[name] = true -- a cycle sees true, as with the standard require
    v = run_source(v, chunkname, name, path)
    if v == nil then v = true end
  end
  loaded[name] = v
  return v
end
return function (path)
  local src, chunkname = caps.member(path)
  return run_source(src, chunkname, nil, path)
end
]==]

-- A read-only file over a bundle member (what io.open gives for one).
local MemFile = { __name = "sfi.bundle.file" }
MemFile.__index = MemFile

function MemFile:read(...)
  local fmts = select("#", ...) > 0 and { ... } or { "l" }
  local out = {}
  for i, f in ipairs(fmts) do
    if type(f) == "string" then f = f:gsub("^%*", "") end
    local d, p, v = self.data, self.pos, nil
    if f == "a" then
      v = d:sub(p); self.pos = #d + 1
    elseif f == "l" or f == "L" then
      if p <= #d then
        local nl = d:find("\n", p, true)
        local stop = nl or #d
        v = d:sub(p, (f == "l" and nl) and stop - 1 or stop)
        self.pos = stop + 1
      end
    elseif math.type(f) == "integer" then
      if p <= #d or f == 0 then v = d:sub(p, p + f - 1); self.pos = p + #v end
      if f == 0 and p > #d then v = nil end
    else
      error("bad argument #" .. i .. " to 'read' (invalid format)", 2)
    end
    out[i] = v
    if v == nil then break end
  end
  return table.unpack(out, 1, #fmts)
end

function MemFile:lines(...)
  local fmts = { ... }
  return function () return self:read(table.unpack(fmts)) end
end

function MemFile:seek(whence, off)
  whence, off = whence or "cur", off or 0
  local base = whence == "set" and 1 or whence == "end" and #self.data + 1 or self.pos
  self.pos = math.max(1, base + off)
  return self.pos - 1
end

function MemFile.close() return true end

--- M.SEARCH: where a bundled `require "a.b"` looks, in order ('?' is "a/b").
M.SEARCH = { "scripts/?.lua", "scripts/?/init.lua", "vendor/?.lua", "?.lua", "?/init.lua" }

local READ_MODES <const> = { r = true, rb = true }
local WRITE_MODES <const> = { w = true, wb = true, a = true, ab = true }

-- The capabilities handed to the prelude.
local function capabilities(box)
  local b, pol, label = box.b, box.pol, box.label
  local function deny(what)
    refuse(pol, "bundle", tostring(what) .. " is not allowed in a bundle")
  end
  local function member(path)
    local ok, data = pcall(b.read, b, path)
    if ok then return data end
    return nil
  end
  local function open(path, mode)
    if type(path) ~= "string" then error("bad argument #1 to 'open' (string expected)", 2) end
    mode = mode or "r"
    if READ_MODES[mode] then
      if pol.bundle_path("read", path) then return io.open(path, mode) end
      local data = member(path)
      if data then return setmetatable({ data = data, pos = 1 }, MemFile) end
    elseif WRITE_MODES[mode] and pol.bundle_path("write", path) then
      return io.open(path, mode)
    end
    refuse(pol, "io.open", "denied")
  end
  local function deny_fn(name) return function () deny(name) end end
  local libs = {}
  return {
    deny = deny,
    package_config = package.config,
    bad_member = function (err)
      errors.raise("FORMAT", "bundle", "bundled file does not load: " .. tostring(err))
    end,
    member = function (path)
      local data = member(path)
      if not data then errors.raise("NOT_FOUND", "bundle", "no member '" .. tostring(path) .. "' in the bundle") end
      return data, "@" .. label .. ":" .. path
    end,
    find = function (name)
      if name == "sfi.core" or name:sub(1, 9) == "sfi.core." then deny("require '" .. name .. "'") end
      if name:sub(1, 4) == "sfi." then
        if not M.LIBRARY[name] then deny("require '" .. name .. "'") end
        libs[name] = libs[name] or wrap_module(pol, name, require(name))
        return "lib", libs[name]
      end
      local rel = name:gsub("%.", "/")
      for _, pat in ipairs(M.SEARCH) do
        local path = pat:gsub("%?", rel)
        local data = member(path)
        if data then return "src", data, "@" .. label .. ":" .. path, path end
      end
      deny("require '" .. name .. "' (not in the bundle)")
    end,
    io = {
      open = open,
      lines = function (path, ...)
        if path == nil then deny("io.lines() on stdin") end
        return open(path, "r"):lines(...)
      end,
      write = function (...) return io.stdout:write(...) end,
      type = function (x) return io.type(x) end,
      popen = deny_fn("io.popen"), input = deny_fn("io.input"), output = deny_fn("io.output"),
      tmpfile = deny_fn("io.tmpfile"), read = deny_fn("io.read"), close = deny_fn("io.close"),
    },
    os = {
      clock = os.clock, date = os.date, time = os.time, difftime = os.difftime,
      execute = deny_fn("os.execute"), exit = deny_fn("os.exit"), getenv = deny_fn("os.getenv"),
      remove = deny_fn("os.remove"), rename = deny_fn("os.rename"), tmpname = deny_fn("os.tmpname"),
      setlocale = deny_fn("os.setlocale"),
    },
  }
end

local Box = {}
Box.__index = Box

--- M.new{bundle=, manifest=, label=, sets=, opts=} -> box: a fresh state for the bundle's
-- code with the station's limits (M.limits(opts)) and policy (M.station). Raises USAGE for a
-- bad limit option.
function M.new(spec)
  local box = setmetatable({ b = spec.bundle, man = spec.manifest, label = spec.label,
    limits = M.limits(spec.opts), watch = {} }, Box)
  box.pol = M.station(spec.manifest, spec.sets, spec.opts)
  local lim = box.limits
  box.sb = core.new { max_instructions = lim.max_instructions, max_memory = lim.max_memory,
    max_cpu = lim.max_cpu, policy = M.policy(box.pol) }
  box.pol.violate = function (e) return box.sb:violate(e) end
  box.pol.refuse = function (op, msg)
    local e = errors.new("SANDBOX", op, msg, nil, 0)
    e = box.sb:violate(e)
    error(e, 0)
  end
  box.t0 = score.now_ms()
  box.run_deadline = box.t0 + math.floor(lim.run_timeout * 1000)
  box.sb:deadline(box.run_deadline, string.format("the bundle ran longer than %g s (--run-timeout)",
    lim.run_timeout))
  local prelude = box.sb:load(PRELUDE, "=sfi.sandbox")
  box.entry = prelude(capabilities(box))
  return box
end

--- box:step(event, name): flow.watch hook: a step's wall-clock limit starts and ends.
function Box:step(event, name)
  local lim = self.limits
  if event == "begin" then
    local at = math.min(self.run_deadline, score.now_ms() + math.floor(lim.step_timeout * 1000))
    self.watch[#self.watch + 1] = { at = at, name = name }
  else
    self.watch[#self.watch] = nil
  end
  local top = self.watch[#self.watch]
  if top and top.at < self.run_deadline then
    self.sb:deadline(top.at, string.format("step '%s' ran longer than %g s (--step-timeout)",
      top.name, lim.step_timeout))
  else
    self.sb:deadline(self.run_deadline, string.format("the bundle ran longer than %g s (--run-timeout)",
      lim.run_timeout))
  end
end

--- box:load(path) -> what the bundled file at path returns (run in the bundle's state).
function Box:load(path)
  return self.entry(path)
end

--- box:enter() / box:leave(): the library's guard is on while the bundle's code can run.
function Box:enter() guard.enter(self.pol) end
function Box.leave() guard.leave() end

--- box:violation() -> the run's SANDBOX or LIMIT error, or nil.
function Box:violation() return self.sb:violation() end

--- box:usage() -> {instructions, memory, peak, cpu}
function Box:usage() return self.sb:usage() end

--- box:close(): ends the guard and closes the bundle's state (idempotent).
function Box:close()
  guard.leave()
  self.sb:close()
end
Box.__close = Box.close

-- }}}

return M
