-- tests/lua/limits_test.lua: the station's limits on a bundle (tests/data/bundle/limits.lua).
-- Runaway bundles end within seconds with LIMIT, the step named, and bounded memory; hiding
-- the work in coroutines, tail calls or pcall does not help; garbage and waiting do not count.
local T = require "sfi.test"
local bundle = require "sfi.bundle"
local core = require "sfi.core"
local fx = require "bundle_fixture"
local log = require "sfi.log"

log.configure { level = "error" }

local dir = T.tmpdir()
local oem = fx.keys(dir, "oem")
local path = fx.make(dir, "limits.lua", oem)
local SFIRUN = os.getenv("SFIRUN") or "sfirun"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function hwm_mib()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s*(%d+)")
    if kb then return tonumber(kb) // 1024 end
  end
  return 0
end

-- Runs one try in process; returns the error (LIMIT expected) and the seconds it took.
local function limited(try, opts)
  opts = opts or {}
  opts.trust = oem.pub
  local t0 = core.now_ms()
  local err = T.raises("LIMIT", bundle.run_file, path, { try = try }, opts)
  local s = (core.now_ms() - t0) / 1000
  T.eq(err.step, "spin", try .. ": the step is named")
  -- seconds of CPU at most; the wall clock allows for a busy machine
  assert(s < 20, try .. " took " .. s .. " s")
  return err, s
end

T.case("instructions: a loop, a tail-call loop, coroutines, a loop catching every error", function ()
  for _, try in ipairs { "loop", "tail", "coroutines", "catch_all" } do
    local err = limited(try, { max_instructions = "20M", max_cpu = "2" })
    assert(tostring(err):find("--max-", 1, true), try .. ": " .. tostring(err))
  end
  local err = limited("loop", { max_instructions = "5M" })
  assert(tostring(err):find("more than 5000000 Lua instructions (--max-instructions)", 1, true),
    tostring(err))
end)

T.case("CPU time: the limit is on the bundle's own work", function ()
  local err = limited("loop", { max_instructions = "100G", max_cpu = "0.5" })
  assert(tostring(err):find("0.5 s of CPU time (--max-cpu)", 1, true), tostring(err))
end)

T.case("a recursion that overflows fails the run without taking the station down", function ()
  local ok, err = pcall(bundle.run_file, path, { try = "recurse" }, { trust = oem.pub,
    max_instructions = "50M" })
  assert(not ok and (tostring(err):find("stack overflow", 1, true) or
    tostring(err):find("LIMIT", 1, true)), tostring(err))
end)

T.case("memory: doubling strings, tables of 1 MiB strings, many small tables, caught errors", function ()
  for _, try in ipairs { "doubling", "big_strings", "small_tables", "catch_memory" } do
    local err = limited(try, { max_memory = "32M", max_instructions = "2G", max_cpu = "3" })
    assert(tostring(err):find("more than 32 MiB of memory (--max-memory)", 1, true),
      try .. ": " .. tostring(err))
  end
  assert(hwm_mib() < 600, "peak resident memory " .. hwm_mib() .. " MiB")
end)

T.case("library objects: a bundle cannot make the library keep millions of them", function ()
  local err = limited("objects", { max_instructions = "10G", max_cpu = "30" })
  assert(tostring(err):find("more than 50000 library objects", 1, true), tostring(err))
end)

T.case("garbage never counts: 300 MiB of short-lived strings under a 32 MiB cap", function ()
  T.eq(bundle.run_file(path, { try = "garbage" }, { trust = oem.pub, max_memory = "32M" }), 0,
    "garbage run")
end)

T.case("a bad limit option is a usage error", function ()
  T.raises("USAGE", bundle.run_file, path, { try = "loop" }, { trust = oem.pub, max_cpu = "soon" })
  T.raises("USAGE", bundle.run_file, path, { try = "loop" }, { trust = oem.pub, max_memory = "-1" })
end)

T.case("command line: exit 1, LIMIT, the step named, the probe closed", function ()
  local state = dir .. "/chip.state"
  local code, out = T.sh(string.format("%s %s --trust %s --set try=loop --max-instructions 3M " ..
    "--probe %s", SFIRUN, q(path), q(oem.pub), q("sim:stm32h753")))
  T.eq(code, 1, "exit code: " .. out)
  assert(out:find("LIMIT", 1, true) and out:find("spin", 1, true), out)
  -- a step timeout while the bundle waits on a slow chip
  code, out = T.sh(string.format("%s %s --trust %s --set try=slow --set ops=100 --step-timeout 1 " ..
    "--probe %s", SFIRUN, q(path), q(oem.pub), q("sim:stm32h753?delay_ms=50&state=" .. state)))
  T.eq(code, 1, "exit code: " .. out)
  assert(out:find("step 'spin' ran longer than 1 s (--step-timeout)", 1, true), out)
  assert(io.open(state), "the simulated chip was saved (its probe closed cleanly)")
end)

T.case("a slow chip is not bundle work: 5 s of waiting under --max-cpu 1", function ()
  local t0 = core.now_ms()
  local code, out = T.sh(string.format("%s %s --trust %s --set try=slow --set ops=50 " ..
    "--max-cpu 1 --max-instructions 1000000 --probe %s", SFIRUN, q(path), q(oem.pub),
    q("sim:stm32h753?delay_ms=100")))
  T.eq(code, 0, "exit code: " .. out)
  assert(core.now_ms() - t0 >= 5000, "it waited")
end)

T.case("stuck in one C call (a pathological pattern): abandoned after the CPU limit + 1 s", function ()
  local state = dir .. "/stuck.state"
  local t0 = core.now_ms()
  local code, out = T.sh(string.format("%s %s --trust %s --set try=pattern --max-cpu 1 --probe %s",
    SFIRUN, q(path), q(oem.pub), q("sim:stm32h753?state=" .. state)))
  local s = (core.now_ms() - t0) / 1000
  T.eq(code, 1, "exit code: " .. out)
  assert(out:find("LIMIT: the bundle used more than 1 s of CPU time (--max-cpu); stuck in one " ..
    "call: abandoned", 1, true) or out:find("LIMIT: the bundle is stuck in one call for more " ..
    "than 2 s (--max-cpu); abandoned", 1, true), out)
  assert(out:find("failed at step 'spin'", 1, true), "the run ended normally, naming the step: " .. out)
  assert(io.open(state), "the simulated chip was saved (its probe closed cleanly)")
  assert(s < 15, "took " .. s .. " s")
end)

T.case("flow: LIMIT, SANDBOX and CANCELED are never retried; flow.watch sees steps begin and end", function ()
  local flow = require "sfi.flow"
  local errors = require "sfi.error"
  local events = {}
  flow.watch = function (ev, name) events[#events + 1] = ev .. " " .. name end
  local r = flow.new_run({ name = "x" }, {})
  for _, c in ipairs { "LIMIT", "SANDBOX", "CANCELED" } do
    local n = 0
    local ok, err = pcall(r.step, r, c, function ()
      n = n + 1
      errors.raise(c, "test", "stop")
    end, { retry = { tries = 3, on = { c, "TIMEOUT" }, backoff = flow.fixed { tries = 3, delay_ms = 0 } } })
    T.eq({ ok, err.code, n }, { false, c, 1 }, c .. " tried once")
    n = 0
    ok = pcall(flow.retry, { tries = 3, on = { c } }, function () n = n + 1; errors.raise(c, "t", "x") end)
    T.eq({ ok, n }, { false, 1 }, c .. ": flow.retry tries once")
  end
  r:step("fine", function () end)
  flow.watch = nil
  T.eq(events, { "begin LIMIT", "end LIMIT", "begin SANDBOX", "end SANDBOX", "begin CANCELED",
    "end CANCELED", "begin fine", "end fine" }, "watch events")
end)
