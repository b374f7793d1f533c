--- sfi.guard: the library's own check while a bundle runs. sfirun installs it before any
-- module loads (sfi.cli.main); from then on every sfi.core.* function and the Lua functions
-- that open files or run programs (io.open, io.lines, os.remove, os.rename, os.execute,
-- io.popen, loadfile, dofile) go through it. While no bundle runs it only passes calls on.
-- While one runs (M.enter(policy) ... M.leave()), every file, directory, lock, journal, probe,
-- token or program the library opens must be one the station allows (the policy), and any
-- sfi.core.* function not listed in M.CORE is refused: a new binding is closed to bundles
-- until someone decides what it may do. See docs/bundles.md.
local M = {}

local active     -- the policy of the bundle that runs, or nil
local installed = false

-- Raises SANDBOX through the policy (which records it as the run's result).
local function refuse(op, msg)
  if active and active.refuse then active.refuse(op, msg) end
  local errors = require "sfi.error"
  error(errors.new("SANDBOX", op, msg, nil, 0), 0)
end

--- M.active() -> the policy of the running bundle, or nil.
function M.active() return active end

--- M.enter(policy): a bundle starts. policy = {allow_path(access, path) -> bool,
-- allow_probe(cfg) -> bool, why, allow_hsm(cfg) -> bool, why, allow_program(argv) -> bool,
-- refuse(op, msg) (records the violation)}.
function M.enter(policy) active = policy end

--- M.leave(): the bundle has ended.
function M.leave() active = nil end

--- M.path(access, path, op): raises SANDBOX "denied" unless the running bundle's policy allows
-- the library to open path for access ("read" | "write" | "dir"). No-op when no bundle runs.
function M.path(access, path, op)
  if not active then return end
  if type(path) ~= "string" or not active.allow_path(access, path) then refuse(op, "denied") end
end

-- Names of probe configuration fields whose string values are paths, and of the string
-- fields that are not. Any other string field is refused while a bundle runs.
M.PROBE_PATHS = { state = true, record = true, trace = true, capture = true, log = true }
M.PROBE_STRINGS = { driver = true, serial = true, connect = true, part = true, variant = true,
  uid = true, power_loss_at = true, reset = true }

local function probe_fields(t, op, depth)
  if depth > 4 then refuse(op, "probe configuration nested too deeply") end
  for k, v in pairs(t) do
    if type(v) == "string" then
      if M.PROBE_PATHS[k] then M.path("write", v, op)
      elseif not M.PROBE_STRINGS[k] then refuse(op, "probe option '" .. tostring(k) .. "' is not allowed") end
    elseif type(v) == "table" then
      probe_fields(v, op, depth + 1)
    end
  end
end

local function allow(fn) return fn end
local OK <const> = true

--- M.CORE: the sfi.core.* functions a bundle's run may reach, each `true` (harmless: pure
-- computation, clocks, logging) or a checker called with the arguments before the function.
M.CORE = {
  ["sfi.core"] = {
    sha256 = OK, crypto_floor_ms = OK, now_ns = OK, now_ms = OK, sleep_ms = OK, canceled = OK,
    versions = OK, log = OK, event = OK, get_log = OK, error = OK, error_mt = OK, codes = OK,
    stat = allow(function (path) M.path("read", path, "stat") end),
    mkdir = allow(function (path) M.path("dir", path, "mkdir") end),
    mkdtemp = allow(function (dir) M.path("dir", dir, "mkdtemp") end),
    lock = allow(function (path) M.path("write", path, "lock") end),
    run = allow(function (argv)
      if type(argv) ~= "table" or not active.allow_program(argv) then
        refuse("run", "the program is not the station's licence command")
      end
    end),
  },
  ["sfi.core.probe"] = {
    list = OK,
    open = allow(function (cfg)
      if type(cfg) ~= "table" then refuse("probe.open", "denied") end
      local ok, why = active.allow_probe(cfg)
      if not ok then refuse("probe.open", why or "not the station's probe") end
      -- a GDB server's table (host, tty, the dialect's commands) was checked against the
      -- station's probe URI by allow_probe; everything else field by field
      local rest = {}
      for k, v in pairs(cfg) do if not (k == "gdb" and cfg.driver == "gdb") then rest[k] = v end end
      probe_fields(rest, "probe.open", 0)
    end),
  },
  ["sfi.core.hsm"] = {
    new_tag = OK, -- 16 random bytes
    open = allow(function (cfg)
      local ok, why = active.allow_hsm(cfg)
      if not ok then refuse("hsm.open", why or "not the station's token") end
      if cfg.lock_dir ~= nil then M.path("dir", cfg.lock_dir, "hsm.open") end
    end),
  },
  ["sfi.core.journal"] = {
    open = allow(function (path) M.path("write", path, "journal.open") end),
  },
  ["sfi.core.image"] = {
    parse = OK, obcsv = OK,
    build = allow(function (opts)
      if type(opts) == "table" and type(opts.out) == "string" then M.path("write", opts.out, "image.build") end
    end),
    write = allow(function (path) M.path("write", path, "image.write") end),
  },
  ["sfi.core.license"] = {
    cert_parse = OK, cert_verify = OK, cert_make = OK, chip_identity = OK, pem_key = OK,
    parse = OK, open = OK, make_soft = OK, on_curve = OK,
  },
  ["sfi.core.rss"] = { attach = OK },
}

local function wrap_module(name, mod)
  if type(mod) ~= "table" then return mod end
  local list = M.CORE[name] or {}
  for k, f in pairs(mod) do
    if type(f) == "function" then
      local check = list[k]
      local what = name .. "." .. k
      mod[k] = function (...)
        if active then
          if check == nil then
            refuse(name:gsub("^sfi%.core%.?", ""):gsub("^$", "core") .. "." .. k,
              what .. " is not allowed while a bundle runs")
          elseif check ~= true then
            check(...)
          end
        end
        return f(...)
      end
    end
  end
  return mod
end

-- Lua's own file and program functions, as the library uses them.
-- luacheck: push ignore 122
local function wrap_globals()
  local open, lines = io.open, io.lines
  io.open = function (path, mode)
    local m = mode or "r"
    M.path(m:find("[wa+]") and "write" or "read", path, "io.open")
    return open(path, mode)
  end
  io.lines = function (path, ...)
    if path ~= nil then M.path("read", path, "io.lines") end
    return lines(path, ...)
  end
  local remove, rename = os.remove, os.rename
  os.remove = function (path) M.path("write", path, "os.remove"); return remove(path) end
  os.rename = function (a, b)
    M.path("write", a, "os.rename"); M.path("write", b, "os.rename")
    return rename(a, b)
  end
  local execute, popen = os.execute, io.popen
  os.execute = function (...)
    if active then refuse("os.execute", "os.execute is not allowed while a bundle runs") end
    return execute(...)
  end
  io.popen = function (...)
    if active then refuse("io.popen", "io.popen is not allowed while a bundle runs") end
    return popen(...)
  end
  local lf, df = loadfile, dofile
  _G.loadfile = function (path, ...) M.path("read", path, "loadfile"); return lf(path, ...) end
  _G.dofile = function (path) M.path("read", path, "dofile"); return df(path) end
end
-- luacheck: pop

--- M.install(): wraps the sfi.core.* modules (loaded or not yet) and Lua's file functions.
-- Idempotent. Called by sfi.cli.main before anything else loads.
function M.install()
  if installed then return end
  installed = true
  for name, loader in pairs(package.preload) do
    if name == "sfi.core" or name:sub(1, 9) == "sfi.core." then
      if package.loaded[name] then
        wrap_module(name, package.loaded[name])
      else
        package.preload[name] = function (...) return wrap_module(name, loader(...)) end
      end
    end
  end
  wrap_globals()
end

return M
