-- flow_test.lua: sfi.flow against fake failing functions and a fake probe.
local T = require "sfi.test"
local flow = require "sfi.flow"
local errors = require "sfi.error"
local log = require "sfi.log"

log.configure { level = "error" } -- keep the test output readable

-- Record sleeps instead of sleeping.
local slept = {}
flow.sleep = function (ms) slept[#slept + 1] = ms end
local function reset_sleeps() slept = {} end

local function failing(codes)
  -- fails with codes[1], codes[2], ... then succeeds; counts calls
  local f = { calls = 0 }
  setmetatable(f, { __call = function (self, ...)
    self.calls = self.calls + 1
    local c = codes[self.calls]
    if c then errors.raise(c, "fake.op", "fake failure " .. self.calls) end
    return "done", ...
  end })
  return f
end

local R = flow.recipe {
  name = "t", version = "2",
  params = {
    image = "path",
    serial = "string?",
    tries = { type = "integer", default = 3, min = 1, max = 10 },
    hash = { type = "boolean", default = false },
    mode = { type = "string", default = "hotplug", choices = { "hotplug", "normal" } },
  },
  run = function () end,
}

T.case("recipe parameters: types, defaults, hex", function ()
  local a = R:parse { image = "x.sfi", tries = "0x5", hash = "yes" }
  T.eq(a, { image = "x.sfi", tries = 5, hash = true, mode = "hotplug" })
  T.eq(R:parse { image = "x", tries = 2 }.tries, 2)
end)

T.case("recipe parameters: bad input names the parameter", function ()
  local e = T.raises("USAGE", R.parse, R, { image = "x", tries = "many" })
  assert(e.msg:find("'tries' must be an integer, got 'many'", 1, true), e.msg)
  e = T.raises("USAGE", R.parse, R, { image = "x", tries = "11" })
  assert(e.msg:find("'tries' must be in", 1, true), e.msg)
  e = T.raises("USAGE", R.parse, R, {})
  assert(e.msg:find("needs parameter 'image'", 1, true), e.msg)
  e = T.raises("USAGE", R.parse, R, { image = "x", colour = "red" })
  assert(e.msg:find("no parameter 'colour'", 1, true), e.msg)
  e = T.raises("USAGE", R.parse, R, { image = "x", mode = "fast" })
  assert(e.msg:find("one of hotplug, normal", 1, true), e.msg)
  e = T.raises("USAGE", R.parse, R, { image = "x", hash = "maybe" })
  assert(e.msg:find("'hash' must be a boolean", 1, true), e.msg)
end)

T.case("recipe descriptor is validated", function ()
  T.raises("%needs a name", flow.recipe, { run = function () end })
  T.raises("%needs a run function", flow.recipe, { name = "x" })
  T.raises("%unknown type 'colour'", flow.recipe, { name = "x", run = print, params = { a = "colour" } })
  T.raises("%default nope is not a integer", flow.recipe,
    { name = "x", run = print, params = { a = { type = "integer", default = "nope" } } })
  local d = R:describe()
  assert(d:find("t 2", 1, true) and d:find("tries", 1, true) and d:find("default 3", 1, true), d)
end)

T.case("retry: retries listed codes with backoff, then succeeds", function ()
  reset_sleeps()
  local f = failing { "TIMEOUT", "BUSY" }
  local r1, r2 = flow.retry({ tries = 3 }, f, 42)
  T.eq({ r1, r2, f.calls }, { "done", 42, 3 })
  T.eq(slept, { 50, 100 })
end)

T.case("retry: gives up after tries and raises the last error", function ()
  reset_sleeps()
  local f = failing { "TIMEOUT", "TIMEOUT", "IO" }
  local e = T.raises("IO", flow.retry, { tries = 3 }, f)
  T.eq(f.calls, 3)
  assert(e.msg == "fake failure 3")
end)

T.case("retry: other codes and bugs are not retried", function ()
  local f = failing { "AUTH" }
  T.raises("AUTH", flow.retry, { tries = 5 }, f)
  T.eq(f.calls, 1)
  local calls = 0
  T.raises("%boom", flow.retry, { tries = 5 }, function () calls = calls + 1; error("boom") end)
  T.eq(calls, 1)
  local g = failing { "AUTH", "AUTH" }
  T.eq((flow.retry({ tries = 3, on = { "AUTH" } }, g)), "done")
end)

T.case("try: sfi.error becomes nil, err; bugs are raised", function ()
  local v, e = flow.try(failing { "LOCKED" })
  assert(v == nil and errors.is(e, "LOCKED"))
  T.eq({ flow.try(function (a) return a, 2 end, 1) }, { 1, 2 })
  T.raises("%real bug", flow.try, function () error("real bug") end)
end)

T.case("policies: fixed, backoff and alternate plans", function ()
  local p = flow.fixed { tries = 3, delay_ms = 10 }
  T.eq(p:plan(), { { n = 1, delay_ms = 0 }, { n = 2, delay_ms = 10 }, { n = 3, delay_ms = 10 } })
  local b = flow.backoff { tries = 6, base_ms = 100, factor = 2, max_ms = 500 }
  local d = {}
  for _, a in ipairs(b:plan()) do d[#d + 1] = a.delay_ms end
  T.eq(d, { 0, 100, 200, 400, 500, 500 })
  T.eq(flow.fixed { tries = 2, delay_ms = 5, first_ms = 30 }:plan()[1].delay_ms, 30)
  local a = flow.alternate { tries = 4, connect = { "hotplug", "under-reset" }, reset = { "sw", "hw" } }
  local modes = {}
  for _, x in ipairs(a:plan()) do modes[#modes + 1] = x.connect .. "/" .. x.reset end
  T.eq(modes, { "hotplug/sw", "under-reset/hw", "hotplug/sw", "under-reset/hw" })
  assert(tostring(b):find("backoff(6 tries", 1, true))
  T.raises("USAGE", flow.fixed, { tries = 0 })
end)

-- A fake probe whose debug port stays silent for `silent` reconnects.
local function fake_probe(silent, code)
  return {
    attempts = {},
    reconnect = function (self, how)
      self.attempts[#self.attempts + 1] = (how.connect or "-") .. "/" .. (how.reset or "-")
      if #self.attempts <= silent then errors.raise(code or "NO_DEVICE", "probe.reconnect") end
    end,
  }
end

T.case("reconnect: succeeds within the strategy, alternating modes", function ()
  reset_sleeps()
  local p = fake_probe(2)
  local n = flow.reconnect(p, flow.alternate { tries = 5, connect = { "hotplug", "normal" },
    reset = { "sw", "hw" }, pause = flow.fixed { tries = 5, delay_ms = 7 } })
  T.eq(n, 3)
  T.eq(p.attempts, { "hotplug/sw", "normal/hw", "hotplug/sw" })
  T.eq(slept, { 7, 7 }) -- the first attempt goes at once
end)

T.case("reconnect: beyond the strategy fails with NO_DEVICE naming it", function ()
  local p = fake_probe(10)
  local e = T.raises("NO_DEVICE", flow.reconnect, p, flow.fixed { tries = 3, delay_ms = 0 })
  T.eq(#p.attempts, 3)
  assert(e.msg:find("after 3 reconnect attempts (strategy fixed(3 x 0 ms))", 1, true), e.msg)
end)

T.case("reconnect: AUTH or LOCKED stops at once", function ()
  local p = fake_probe(10, "LOCKED")
  T.raises("LOCKED", flow.reconnect, p, flow.fixed { tries = 3, delay_ms = 0 })
  T.eq(#p.attempts, 1)
end)

T.case("step: ok, retry policy, failure tagged with the step", function ()
  reset_sleeps()
  local r = flow.new_run(R, {})
  T.eq(r:step("a", function () return 7 end), 7)
  local f = failing { "BUSY" }
  T.eq(r:step("b", function () return f() end, { retry = 2 }), "done")
  local e = T.raises("TARGET", r.step, r, "c", function () errors.raise("TARGET", "rss", "0xCC000007") end)
  T.eq(e.step, "c")
  T.eq({ r.steps[1].status, r.steps[2].status, r.steps[2].attempts, r.steps[3].status, r.steps[3].code },
    { "ok", "ok", 2, "fail", "TARGET" })
  local v, oe = r:step("d", function () errors.raise("IO", "x") end, { optional = true })
  assert(v == nil and errors.is(oe, "IO"))
end)

T.case("step: NO_DEVICE triggers the reconnect policy then retries the step", function ()
  local r = flow.new_run(R, {})
  r.probe = fake_probe(1)
  local f = failing { "NO_DEVICE" }
  T.eq(r:step("read", function () return f() end, { reconnect = flow.fixed { tries = 3, delay_ms = 0 } }), "done")
  T.eq(#r.probe.attempts, 2)
  -- without a policy NO_DEVICE is a failure
  local g = failing { "NO_DEVICE" }
  T.raises("NO_DEVICE", r.step, r, "read2", function () return g() end)
end)

T.case("run: closes owned resources in reverse order, even on failure", function ()
  local closed = {}
  local desc = flow.recipe { name = "x", run = function (r)
    r:own { close = function () closed[#closed + 1] = "a" end }
    r:own { close = function () closed[#closed + 1] = "b"; error("close fails") end }
    r:fact("licence_consumed", true)
    errors.raise("TIMEOUT", "op")
  end }
  local ok, err, r = flow.run(desc, {})
  assert(not ok and errors.is(err, "TIMEOUT"))
  T.eq(closed, { "b", "a" })
  T.eq(r.facts.licence_consumed, true)
end)

T.case("sfi.error: fields and one-line tostring", function ()
  local e = errors.new("TIMEOUT", "probe.read_mem", "operation timed out", "LIBUSB_ERROR_TIMEOUT")
  T.eq({ e.code, e.op, e.detail }, { "TIMEOUT", "probe.read_mem", "LIBUSB_ERROR_TIMEOUT" })
  local s = tostring(e)
  assert(s:match("^.-flow_test%.lua:%d+: probe%.read_mem: TIMEOUT: operation timed out %(LIBUSB_ERROR_TIMEOUT%)$"), s)
  assert(not s:find("\n"))
  T.raises("%unknown sfi error code", errors.new, "WHATEVER")
  assert(errors.is(e) and errors.is(e, "TIMEOUT") and not errors.is(e, "IO") and not errors.is({}))
  T.eq(#errors.codes, 21)
  T.eq(errors.codes[21], "LIMIT", "the newest code")
end)
