--- sfi.bundle: signed recipe bundles for contract manufacturers.
-- create{} packs a recipe and the files it names into one signed archive; verify() and
-- run_file() check the signature and every hash in memory before any bundled Lua runs, then
-- run the recipe in a sandbox (see docs/bundles.md for the rules and their reasons).
local core = require "sfi.core.bundle"
local errors = require "sfi.error"
local log = require "sfi.log"

local M = {}

--- M.LIBRARY: the trusted sfi.* modules a bundled recipe may require. They are loaded from
-- the installed library (never from the bundle), run with the full environment and are
-- handed to the bundle as read-only views. Anything else named sfi.* is refused.
M.LIBRARY = {
  ["sfi.flow"] = true, ["sfi.log"] = true, ["sfi.error"] = true, ["sfi.device"] = true,
  ["sfi.probe"] = true, ["sfi.image"] = true, ["sfi.hsm"] = true, ["sfi.ob"] = true,
  ["sfi.sfi"] = true, ["sfi.license"] = true, ["sfi.cert"] = true,
}

--- M.SEARCH: where a bundled `require "a.b"` looks, in order ('?' is "a/b").
M.SEARCH = { "scripts/?.lua", "scripts/?/init.lua", "vendor/?.lua", "?.lua", "?/init.lua" }

-- {{{ the sandbox

local function sandbox_error(what, level)
  error(errors.new("SANDBOX", "bundle", what .. " is not allowed in a bundle", nil,
    (level or 2) + 1), 0)
end

local function deny(what)
  return function () sandbox_error(what, 2) end
end

-- A table whose every field access raises SANDBOX (debug, package).
local function forbidden(name, allowed)
  return setmetatable({}, {
    __index = function (_, k)
      if allowed and allowed[k] ~= nil then return allowed[k] end
      sandbox_error(name .. "." .. tostring(k), 2)
    end,
    __newindex = function (_, k) sandbox_error("changing " .. name .. "." .. tostring(k), 2) end,
    __metatable = false,
  })
end

-- Fields of a library view that differ from the module: the bundle's identity in the log
-- (bundle, bundle_version, signer) is set by the runner and cannot be changed by the recipe.
local GUARDED <const> = { bundle = true, bundle_version = true, signer = true }
local OVERRIDES <const> = {
  ["sfi.log"] = function (log_mod)
    return {
      context = function (fields)
        for k in pairs(fields) do
          if GUARDED[k] then sandbox_error("changing the log context field '" .. k .. "'", 2) end
        end
        return log_mod.context(fields)
      end,
    }
  end,
}

local function readonly(name, t)
  local over = OVERRIDES[name] and OVERRIDES[name](t) or {}
  return setmetatable({}, {
    __index = function (_, k)
      local v = over[k]
      if v == nil then v = t[k] end
      return v
    end,
    __newindex = function (_, k) sandbox_error("changing " .. name .. "." .. tostring(k), 2) end,
    __pairs = function () return next, t, nil end,
    __metatable = false,
  })
end

local function copy(t, except)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  for k, v in pairs(except or {}) do c[k] = v end
  return c
end

-- A read-only file object over a bundle member (what io.open returns for one).
local MemFile = { __name = "sfi.bundle.file" }
MemFile.__index = MemFile

local function memfile(data) return setmetatable({ data = data, pos = 1 }, MemFile) end

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
MemFile.__close = MemFile.close

local READ_MODES <const> = { r = true, rb = true }
local WRITE_MODES <const> = { w = true, wb = true, a = true, ab = true }

-- True when path is the value of a parameter the manifest permits for this access.
local function permitted(state, access, path)
  for _, p in ipairs(state.manifest.permits) do
    if p.access == access and state.args and state.args[p.param] == path then return true end
  end
  return false
end

local function make_env(b, man, label)
  local state = { manifest = man, loaded = {} }
  local env = {}
  for _, k in ipairs { "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall",
      "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable", "getmetatable",
      "tonumber", "tostring", "type", "print", "_VERSION" } do
    env[k] = _G[k]
  end
  -- the string metatable is shared with trusted code: the sandbox does not get it
  env.getmetatable = function (o)
    if type(o) == "string" then return nil end
    return getmetatable(o)
  end
  env.string = copy(string, { dump = deny("string.dump") })
  env.table, env.math, env.utf8, env.coroutine = copy(table), copy(math), copy(utf8),
      copy(coroutine)
  env.os = copy({ clock = os.clock, date = os.date, time = os.time, difftime = os.difftime }, {
    execute = deny("os.execute"), exit = deny("os.exit"), getenv = deny("os.getenv"),
    remove = deny("os.remove"), rename = deny("os.rename"), tmpname = deny("os.tmpname"),
    setlocale = deny("os.setlocale"),
  })

  local function open(path, mode)
    if type(path) ~= "string" then error("bad argument #1 to 'open' (string expected)", 2) end
    mode = mode or "r"
    if READ_MODES[mode] then
      if permitted(state, "read", path) then return io.open(path, mode) end
      local ok, data = pcall(b.read, b, path)
      if ok then return memfile(data) end
    elseif WRITE_MODES[mode] and permitted(state, "write", path) then
      return io.open(path, mode)
    end
    sandbox_error(string.format("io.open(%q, %q)", path, mode), 3)
  end
  env.io = {
    open = function (path, mode) return open(path, mode) end,
    lines = function (path, ...)
      if path == nil then sandbox_error("io.lines() on stdin", 2) end
      local f = open(path, "r")
      return f:lines(...)
    end,
    write = function (...) return io.stdout:write(...) end,
    type = io.type,
    popen = deny("io.popen"), input = deny("io.input"), output = deny("io.output"),
    tmpfile = deny("io.tmpfile"), read = deny("io.read"), close = deny("io.close"),
  }
  env.debug = forbidden("debug")
  env.package = forbidden("package", { config = package.config })
  env.dofile = deny("dofile")
  env.loadfile = deny("loadfile")
  env.load = function (chunk, name, mode, e)
    if mode ~= nil and mode ~= "t" then sandbox_error("load in mode '" .. tostring(mode) .. "'", 2) end
    if type(chunk) == "string" and chunk:byte(1) == 27 then
      sandbox_error("load with a binary chunk", 2)
    end
    if type(chunk) == "function" then
      local first = true
      local inner = chunk
      chunk = function ()
        local piece = inner()
        if first and type(piece) == "string" and piece ~= "" then
          first = false
          if piece:byte(1) == 27 then sandbox_error("load with a binary chunk", 2) end
        end
        return piece
      end
    end
    return load(chunk, name, "t", e or env)
  end
  env.collectgarbage = function (opt, ...)
    if opt == nil or opt == "collect" or opt == "count" or opt == "step" then
      return collectgarbage(opt, ...)
    end
    sandbox_error("collectgarbage('" .. tostring(opt) .. "')", 2)
  end

  local function load_member(path, modname)
    local src = b:read(path)
    local chunk, err = load(src, "@" .. label .. ":" .. path, "t", env)
    if not chunk then errors.raise("FORMAT", "bundle", "bundled file does not load: " .. err) end
    return chunk(modname, path)
  end

  env.require = function (name)
    if type(name) ~= "string" then error("bad argument #1 to 'require' (string expected)", 2) end
    local hit = state.loaded[name]
    if hit ~= nil then return hit end
    if name == "sfi.core" or name:sub(1, 9) == "sfi.core." then
      sandbox_error("require '" .. name .. "'", 2)
    end
    if name:sub(1, 4) == "sfi." then
      if not M.LIBRARY[name] then sandbox_error("require '" .. name .. "'", 2) end
      state.loaded[name] = readonly(name, require(name))
      return state.loaded[name]
    end
    local rel = name:gsub("%.", "/")
    for _, pat in ipairs(M.SEARCH) do
      local path = pat:gsub("%?", rel)
      local ok = pcall(b.read, b, path)
      if ok then
        state.loaded[name] = true -- a cycle sees true, as with the standard require
        local v = load_member(path, name)
        if v == nil then v = true end
        state.loaded[name] = v
        return v
      end
    end
    sandbox_error("require '" .. name .. "' (not in the bundle)", 2)
  end
  env._G = env
  return env, state, load_member
end

-- }}}

local function basename(p) return (p:match("([^/]+)$") or p) end

--- M.open(path_or_bytes, trust) -> sfi.bundle (verified). trust is a PEM public key or its
-- path. Raises FORMAT (hostile or malformed archive), AUTH (signature, trust key, hash),
-- UNSUPPORTED (sfirun version out of the bundle's range), NOT_FOUND (no such file).
function M.open(src, trust)
  if type(src) ~= "string" or type(trust) ~= "string" then
    error("bundle.open expects a path (or bytes) and a trust key", 2)
  end
  return core.open(src, trust)
end

--- M.verify(path, trust) -> manifest table {name, version, min_sfirun, max_sfirun, entry,
-- signer, format, permits, files}. Raises like M.open.
function M.verify(path, trust)
  local b <close> = M.open(path, trust)
  return b:manifest()
end

--- M.memory(files, manifest) -> an object with the bundle's read/manifest methods over a
-- {path = data} table (files not yet signed, e.g. while creating). read raises NOT_FOUND.
function M.memory(files, manifest)
  return {
    read = function (_, p)
      local d = files[p]
      if d == nil then errors.raise("NOT_FOUND", "bundle.read", "no member '" .. p .. "' in the bundle") end
      return d
    end,
    manifest = function () return manifest end,
  }
end

--- M.load(b, label) -> recipe descriptor: runs the bundle's entry in the sandbox.
-- Raises SANDBOX (forbidden call while loading), FORMAT (entry does not load or is not a
-- recipe), or the recipe's own error.
function M.load(b, label)
  local flow = require "sfi.flow"
  local man = b:manifest()
  local env, state, load_member = make_env(b, man, label or man.name)
  local ok, desc = pcall(load_member, man.entry)
  if not ok then
    if errors.is(desc) then error(desc, 0) end
    errors.raise("FORMAT", "bundle", "recipe failed while loading: " .. tostring(desc))
  end
  if not flow.is_recipe(desc) then
    errors.raise("FORMAT", "bundle", "entry '" .. man.entry .. "' must return flow.recipe{...}")
  end
  local run = desc.run
  desc.run = function (r, args)
    state.args = args -- the permits name parameters: their values are known now
    return run(r, args)
  end
  desc.path = (label or man.name) .. ":" .. man.entry
  desc.bundle = man
  return desc, env
end

--- M.run_file(path, sets, opts) -> 0: verifies the bundle at path against opts.trust, then
-- runs its recipe in the sandbox through sfi.cli.run.execute. Raises USAGE without --trust,
-- the errors of M.open and M.load, and the recipe's error.
function M.run_file(path, sets, opts)
  if not opts.trust then
    errors.raise("USAGE", nil, "running a bundle needs --trust KEY.pub (the OEM's public key)")
  end
  local b <close> = M.open(path, opts.trust)
  local man = b:manifest()
  log.context { bundle = man.name, bundle_version = man.version, signer = man.signer }
  log.event("bundle", { files = #man.files, format = man.format },
    string.format("Bundle %s %s verified: %d files, signer %s", man.name, man.version,
      #man.files, man.signer))
  local desc = M.load(b, basename(path))
  return require("sfi.cli.run").execute(desc, sets, opts)
end

-- {{{ create

local function readfile(path, what)
  local f = io.open(path, "rb")
  if not f then errors.raise("NOT_FOUND", "bundle.create", "cannot open " .. what .. " '" .. path .. "'") end
  local s = f:read("a")
  f:close()
  return s
end

local function clean(p)
  p = p:gsub("^%./+", ""):gsub("/+$", ""):gsub("//+", "/")
  if p:sub(1, 1) == "/" or p:find("\\", 1, true) or ("/" .. p .. "/"):find("/%.%./") then
    errors.raise("USAGE", nil, "include '" .. p .. "': use a relative path below the current directory")
  end
  return p
end

local function shquote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Regular files under a directory (symbolic links are not followed), or the file itself,
-- stored under their path relative to base (when given).
local function collect(base, rel, files)
  local path = base and (base .. "/" .. rel) or rel
  local f = io.open(path, "rb")
  if f and f:read(0) then
    f:close()
    files[rel] = readfile(path, "file")
    return
  end
  if f then f:close() end
  local p = io.popen("find " .. shquote(path) .. " -type f -print 2>/dev/null", "r")
  local n = 0
  local prefix = base and (base .. "/") or ""
  for line in p:lines() do
    if line:sub(1, #prefix) == prefix then
      files[clean(line:sub(#prefix + 1))] = readfile(line, "file")
      n = n + 1
    end
  end
  p:close()
  if n == 0 then errors.raise("NOT_FOUND", "bundle.create", "include '" .. path .. "': no files") end
end

local function default_range()
  local maj, min = core.sfirun_version:match("^(%d+)%.(%d+)")
  return maj .. "." .. min, maj .. "." .. (tonumber(min) + 1)
end

--- M.create{recipe=, include={...}, base=DIR?, sign=KEY.pem|pkcs11:URI, out=?, name=?, version=?,
-- permits=?, sfirun=">=0.1 <0.2"?, format="tar.gz"|"zip"|"tar"} -> bytes, summary table.
-- The recipe is stored as recipes/<file name>; each include (file or directory, relative to
-- base, default the current directory) under that relative path. name/version/permissions
-- default to the recipe's descriptor. Writes
-- `out` atomically when given. Raises USAGE, NOT_FOUND, INVALID, FORMAT (key), CRYPTO.
function M.create(spec)
  if type(spec) ~= "table" or type(spec.recipe) ~= "string" or type(spec.sign) ~= "string" then
    error("bundle.create expects {recipe=PATH, sign=KEY.pem, ...}", 2)
  end
  local files = {}
  local entry = "recipes/" .. basename(spec.recipe)
  files[entry] = readfile(spec.recipe, "recipe")
  local base = spec.base and spec.base:gsub("/+$", "")
  for _, inc in ipairs(spec.include or {}) do collect(base, clean(inc), files) end
  -- Load the recipe the way the CM will: in the sandbox, over the collected files.
  local desc = M.load(M.memory(files, { entry = entry, permits = {} }), basename(spec.recipe))
  local name = spec.name or desc.name
  local version = spec.version or desc.version
  local permits = spec.permits or desc.bundle_permissions or {}
  local lo, hi = default_range()
  if spec.sfirun then
    lo, hi = spec.sfirun:match("^>=([%d%.]+) <([%d%.]+)$")
    if not lo then errors.raise("USAGE", nil, "sfirun range must look like '>=0.1 <0.2'") end
  end
  local uri = spec.sign:match("^pkcs11:") and spec.sign -- a key kept in a token (docs/bundles.md)
  local key = not uri and readfile(spec.sign, "signing key") or nil
  local bytes, signer = core.create {
    name = name, version = tostring(version), min_sfirun = lo, max_sfirun = hi, entry = entry,
    permits = permits, files = files, key = key, key_uri = uri, format = spec.format or "tar.gz",
  }
  local count = 0
  for _ in pairs(files) do count = count + 1 end
  local summary = { name = name, version = tostring(version), entry = entry, files = count,
                    signer = signer,
                    sfirun = ">=" .. lo .. " <" .. hi, bytes = #bytes }
  if spec.out then
    local tmp = spec.out .. ".tmp"
    local f, err = io.open(tmp, "wb")
    if not f then errors.raise("IO", "bundle.create", "cannot write '" .. spec.out .. "': " .. err) end
    local wok, werr = f:write(bytes)
    f:close()
    if not wok then os.remove(tmp); errors.raise("IO", "bundle.create", tostring(werr)) end
    local rok, rerr = os.rename(tmp, spec.out)
    if not rok then os.remove(tmp); errors.raise("IO", "bundle.create", tostring(rerr)) end
  end
  return bytes, summary
end

-- }}}

return M
