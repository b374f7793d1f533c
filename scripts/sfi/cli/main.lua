--- sfi.cli.main: the sfirun command line. The C host calls M.main(argv) under a
-- protected call and exits with what it returns: 0 success, 1 the flow failed,
-- 2 usage or bad input (USAGE, FORMAT).
require("sfi.guard").install() -- before any other module: see sfi.guard
local args = require "sfi.cli.args"
local errors = require "sfi.error"
local log = require "sfi.log"
local core = require "sfi.core"

local M = {}

--- M.commands: sub-commands, each a module sfi.cli.<name> with run(argv, first) -> code.
M.commands = {
  { "image", "build, inspect, verify and decrypt SFI images" },
  { "ob", "read and write option bytes by name" },
  { "cert", "read a chip certificate" },
  { "preflight", "check every SFI precondition of a chip, reading only" },
  { "explain", "diagnose a failed install from a log of ST's tool or sfirun" },
  { "hsm", "provision and inspect the licence HSM (PKCS#11)" },
  { "journal", "show the licence journal" },
  { "bundle", "create and verify signed recipe bundles" },
  { "probes", "list connected probes" },
  { "sim-server", "serve a simulated target over the stlink-server protocol" },
  { "trace", "decode and compare ST-LINK traffic captures (pcap, pcapng)" },
}

local RECIPE_SPEC <const> = {
  { "set", "--set", value = "KEY=VALUE", multi = true, help = "set a recipe parameter" },
  { "probe", "--probe", value = "URI", multi = true,
    help = "probe URI (sets the recipe's 'probe' parameter); given several times, a gang: " ..
      "one run per probe, at once" },
  { "gang", "--gang", value = "FILE", help = "gang: one slot per line, 'NAME URI' or 'URI'" },
  { "continuous", "--continuous", help = "gang: keep serving the slots; a new chip on a " ..
      "slot's probe starts its next install (until Ctrl-C or the counter runs out)" },
  { "count", "--count", value = "N", help = "with --continuous: stop after N devices" },
  { "hsm", "--hsm", value = "URI", help = "PKCS#11 URI (sets the recipe's 'hsm' parameter)" },
  { "journal", "--journal", value = "PATH", help = "licence journal database" },
  { "trust", "--trust", value = "KEY.pub", help = "OEM public key a bundle must be signed by" },
  { "max_instructions", "--max-instructions", value = "N",
    help = "bundles: Lua instructions the bundle may run (default 500M)" },
  { "max_cpu", "--max-cpu", value = "S", help = "bundles: CPU seconds of bundle code (default 10)" },
  { "max_memory", "--max-memory", value = "SIZE", help = "bundles: memory of the bundle's Lua (default 256M)" },
  { "step_timeout", "--step-timeout", value = "S", help = "bundles: wall-clock seconds per step (default 600)" },
  { "run_timeout", "--run-timeout", value = "S", help = "bundles: wall-clock seconds per run (default 3600)" },
  { "describe", "--describe", help = "print the recipe's parameters and exit" },
  { "plan", "--plan", help = "print the steps the recipe would run (no probe or HSM opened)" },
  { "test", "--test", help = "run a test file (tests/lua) and print 'N passed, N failed'" },
  { "include", "-I", value = "DIR", multi = true, help = "prepend DIR to the script path" },
  { "version", "--version", help = "print versions and exit" },
}

local function exit_code(err)
  if errors.is(err) and (err.code == "USAGE" or err.code == "FORMAT") then return 2 end
  return 1
end

local function available(name)
  return package.searchpath("sfi.cli." .. name:gsub("-", "_"), package.path) ~= nil
end

local function help()
  local out = {
    "usage: sfirun RECIPE.lua|BUNDLE.sfib [--set KEY=VALUE]... [--probe URI] [--hsm URI] [--json] [-v]",
    "       sfirun RECIPE.lua --probe URI --probe URI... | --gang FILE   (a gang: one run per probe)",
    "       sfirun --describe RECIPE.lua",
    "       sfirun --plan RECIPE.lua|BUNDLE.sfib [--set KEY=VALUE]...",
    "       sfirun COMMAND --help",
    "",
    "Runs a Lua recipe that installs firmware into STM32 microcontrollers (Secure Firmware",
    "Install). Secrets (PINs, keys) come from environment variables or files, never argv.",
    "",
    "commands:",
  }
  for _, c in ipairs(M.commands) do
    if available(c[1]) then out[#out + 1] = string.format("  %-12s %s", c[1], c[2]) end
  end
  out[#out + 1] = ""
  out[#out + 1] = "options:"
  out[#out + 1] = args.help(RECIPE_SPEC)
  out[#out + 1] = ""
  out[#out + 1] = "exit codes: 0 success, 1 the flow failed, 2 usage error or bad input; a gang:"
  out[#out + 1] = "0 every slot succeeded, 1 any slot failed (the summary names them), 2 every"
  out[#out + 1] = "slot failed on bad input"
  return table.concat(out, "\n")
end

local function versions()
  local v = core.versions()
  return string.format("sfirun %s\n  %s\n  OpenSSL %s\n  libusb %s\n  libp11 %s\n  %s\n  SQLite %s",
    v.sfirun, v.lua, v.openssl:gsub("^OpenSSL ", ""), v.libusb, v.libp11, v.libarchive, v.sqlite)
end

local function parse_sets(list)
  local sets = {}
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match("^([%w_%.%-]+)=(.*)$")
    if not k then errors.raise("USAGE", nil, "--set expects KEY=VALUE, got '" .. kv .. "'") end
    sets[k] = v
  end
  return sets
end

local function run_test(path, argv, first)
  local T = require "sfi.test"
  local chunk, lerr = loadfile(path)
  if not chunk then errors.raise("USAGE", nil, "cannot load test: " .. lerr) end
  _G.arg = { [0] = path, table.unpack(argv, first) }
  local ok, err = xpcall(chunk, debug.traceback, table.unpack(argv, first))
  if not ok then
    T.failed = T.failed + 1
    io.stdout:write("FAIL (outside a case) ", tostring(err), "\n")
  end
  T.cleanup()
  return T.summary() > 0 and 1 or 0
end

local function main(argv)
  -- Global flags before the first word; a sub-command parses the rest itself.
  local first = 1
  while argv[first] and argv[first]:sub(1, 1) == "-" do
    local a = argv[first]
    if a == "-I" then first = first + 2
    elseif a == "--test" or a == "--describe" then break
    else first = first + 1 end
    if a == "--version" or a == "--help" or a == "-h" then break end
  end
  local word = argv[first]
  if word and word:sub(1, 1) ~= "-" then
    for _, c in ipairs(M.commands) do
      if c[1] == word then
        local gopts = args.parse({ table.unpack(argv, 1, first - 1) }, RECIPE_SPEC)
        args.setup_log(gopts)
        if not available(word) then
          errors.raise("USAGE", nil, "command '" .. word .. "' is not available in this build")
        end
        local cmd = require("sfi.cli." .. word:gsub("-", "_"))
        return cmd.run(argv, first + 1, gopts) or 0
      end
    end
  end

  local opts, pos = args.parse(argv, RECIPE_SPEC)
  args.setup_log(opts)
  for i = #(opts.include or {}), 1, -1 do
    local d = opts.include[i]
    package.path = d .. "/?.lua;" .. d .. "/?/init.lua;" .. package.path
  end
  if opts.help then io.stdout:write(help(), "\n"); return 0 end
  if opts.version then io.stdout:write(versions(), "\n"); return 0 end
  if opts.test then
    if not pos[1] then errors.raise("USAGE", nil, "--test needs a file") end
    -- positional arguments after the file are passed to it
    local idx
    for i, a in ipairs(argv) do if a == pos[1] then idx = i; break end end
    return run_test(pos[1], argv, idx + 1)
  end
  if not pos[1] then
    errors.raise("USAGE", nil, "no recipe given (try 'sfirun --help')")
  end
  if #pos > 1 then
    errors.raise("USAGE", nil, "unexpected argument '" .. pos[2] .. "' (one recipe per run)")
  end
  local run = require "sfi.cli.run"
  local sets = parse_sets(opts.set)
  local probes = opts.probe or {}
  if opts.gang or #probes > 1 or opts.continuous then
    if opts.describe or opts.plan then
      errors.raise("USAGE", nil, "--describe and --plan take one probe, not a gang")
    end
    local gang = require "sfi.gang"
    run.load(pos[1]) -- a broken recipe is one usage error, not one per slot
    if opts.continuous then
      return gang.continuous(pos[1], sets, opts, gang.slots(probes, opts.gang))
    end
    return gang.run(pos[1], sets, opts, gang.slots(probes, opts.gang))
  end
  opts.probe = probes[1]
  if opts.describe then
    io.stdout:write(run.load(pos[1], opts):describe(), "\n")
    return 0
  end
  return run.recipe(pos[1], sets, opts)
end

-- -v before the first word (the recipe or sub-command), or as the sub-command took it:
-- `sfirun image build ... -v 0` is TPC's image version, never --verbose.
local function verbose_in(argv)
  for _, a in ipairs(argv) do
    if a == "-v" or a == "--verbose" then return true end
    if a:sub(1, 1) ~= "-" then break end
  end
  return (args.verbose() or 0) > 0
end

-- The directory of the sfi Lua library: a location inside it means nothing to a user.
local LIB <const> = (package.searchpath("sfi.error", package.path) or ""):gsub("sfi/error%.lua$", "")

local function internal(where)
  return LIB ~= "" and where:sub(1, #LIB) == LIB
end

--- M.message(err, verbose) -> the one line a user sees: an sfi.error without a location in
-- the library (a location in the user's recipe stays); a bug's message without the library
-- path. With verbose everything is kept.
function M.message(err, verbose)
  if verbose then return tostring(err) end
  if errors.is(err) then
    if err.where and (internal(err.where) or err.code == "USAGE" or err.code == "FORMAT") then
      local w = err.where
      err.where = nil
      local s = tostring(err)
      err.where = w
      return s
    end
    return tostring(err)
  end
  local s = tostring(err)
  local path, rest = s:match("^(.-:%d+: )(.*)$")
  if path and internal(path) then return "internal error: " .. rest .. " (-v shows where)" end
  return s
end

local function json_in(argv)
  for _, a in ipairs(argv) do if a == "--json" then return true end end
  return false
end

--- M.report(err, verbose, tb): prints the one-line error (and the traceback with -v).
function M.report(err, verbose, tb)
  local msg = M.message(err, verbose)
  if errors.is(err) and err.hint then msg = msg .. "\n  hint: " .. err.hint end
  io.stderr:write("sfirun: ", msg, "\n")
  if verbose and tb then io.stderr:write(tb, "\n") end
  io.stderr:flush()
end

--- M.main(argv) -> exit code. argv is the host's argument list (argv[0] = program).
function M.main(argv)
  local tb
  local ok, res = xpcall(main, function (e)
    tb = debug.traceback("traceback:", 2)
    return e
  end, argv)
  if ok then return math.tointeger(res) or 0 end
  if json_in(argv) and errors.is(res) and not res.reported then
    log.event("result", { status = "fail", code = res.code, step = res.step },
      M.message(res, verbose_in(argv)), "error")
  end
  local flow = package.loaded["sfi.flow"]
  M.report(res, verbose_in(argv), flow and flow.last_traceback or tb)
  return exit_code(res)
end

M.exit_code = exit_code

return M
