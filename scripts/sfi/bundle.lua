--- sfi.bundle: signed recipe bundles for contract manufacturers.
-- create{} packs a recipe and the files it names into one signed archive; verify() and
-- run_file() check the signature and every hash in memory before any bundled Lua runs, then
-- run the recipe in a sandbox (see docs/bundles.md for the rules and their reasons).
local core = require "sfi.core.bundle"
local errors = require "sfi.error"
local log = require "sfi.log"
local sandbox = require "sfi.sandbox"
local util = require "sfi.util"

local M = {}

--- The largest bundle file opened (the archive reader's own limit on a whole bundle).
M.BUNDLE_MAX = 256 * 1024 * 1024

local function basename(p) return (p:match("([^/]+)$") or p) end

--- M.open(path_or_bytes, trust) -> sfi.bundle (verified). trust is a PEM public key or its
-- path. Raises FORMAT (hostile or malformed archive), AUTH (signature, trust key, hash),
-- UNSUPPORTED (sfirun version out of the bundle's range), NOT_FOUND (no such file).
function M.open(src, trust)
  if type(src) ~= "string" or type(trust) ~= "string" then
    error("bundle.open expects a path (or bytes) and a trust key", 2)
  end
  -- a path (bytes of an archive always hold a NUL) is checked before anything is read: a
  -- directory, FIFO or device is refused up front, a file over the limit is not read
  if not src:find("\0", 1, true) then util.check_file(src, "bundle", M.BUNDLE_MAX) end
  if not trust:find("-----BEGIN", 1, true) then util.check_file(trust, "trust key", 64 * 1024) end
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

--- M.load(b, label, [sets], [opts]) -> recipe descriptor, box: runs the bundle's entry in a
-- Lua state of its own (sfi.sandbox) under the station's policy and limits (sets: the values
-- the operator typed; opts: the command line). The caller closes the box when the run ends.
-- Raises SANDBOX or LIMIT (while loading), FORMAT (entry does not load or is not a recipe),
-- USAGE (a bad limit option), or the recipe's own error.
function M.load(b, label, sets, opts)
  local flow = require "sfi.flow"
  local man = b:manifest()
  local box = sandbox.new { bundle = b, manifest = man, label = label or man.name, sets = sets,
    opts = opts }
  box:enter()
  local ok, desc = pcall(box.load, box, man.entry)
  box:leave()
  local v = box:violation()
  if v or not ok then
    box:close()
    if v then error(v, 0) end
    if errors.is(desc) then error(desc, 0) end
    errors.raise("FORMAT", "bundle", "recipe failed while loading: " .. tostring(desc))
  end
  if not flow.is_recipe(desc) then
    box:close()
    errors.raise("FORMAT", "bundle", "entry '" .. man.entry .. "' must return flow.recipe{...}")
  end
  desc.path = (label or man.name) .. ":" .. man.entry
  desc.bundle = man
  return desc, box
end

--- M.run_file(path, sets, opts) -> 0: verifies the bundle at path against opts.trust, then
-- runs its recipe in the sandbox through sfi.cli.run.execute, with the station's limits
-- (opts.max_instructions, max_cpu, max_memory, step_timeout, run_timeout). Raises USAGE
-- without --trust, the errors of M.open and M.load, the recipe's error; the first SANDBOX or
-- LIMIT error is the result whatever the recipe did with it.
function M.run_file(path, sets, opts)
  if not opts.trust then
    errors.raise("USAGE", nil, "running a bundle needs --trust KEY.pub (the OEM's public key)")
  end
  sandbox.limits(opts) -- a bad limit is a usage error before anything opens
  local b <close> = M.open(path, opts.trust)
  local man = b:manifest()
  log.context { bundle = man.name, bundle_version = man.version, signer = man.signer }
  log.event("bundle", { files = #man.files, format = man.format },
    string.format("Bundle %s %s verified: %d files, signer %s", man.name, man.version,
      #man.files, man.signer))
  local typed = {}
  for k, v in pairs(sets) do typed[k] = v end
  local desc, box0 = M.load(b, basename(path), typed, opts)
  local box <close> = box0
  local flow = require "sfi.flow"
  local watch = flow.watch
  flow.watch = function (event, name) box:step(event, name) end
  box:enter()
  local ok, res = pcall(require("sfi.cli.run").execute, desc, sets, opts)
  box:leave()
  flow.watch = watch
  local v = box:violation()
  local use = box:usage()
  log.event("bundle_usage", { instructions = use.instructions, cpu_s = use.cpu,
    peak_bytes = use.peak }, nil, "debug")
  if v then
    if not v.reported and not ok and res ~= v then v.step = v.step or (errors.is(res) and res.step) end
    error(v, 0)
  end
  if not ok then error(res, 0) end
  return res
end

-- {{{ create

local function readfile(path, what) return util.read_file(path, what) end

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
  local desc, box = M.load(M.memory(files, { entry = entry, permits = {} }), basename(spec.recipe))
  box:close()
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
