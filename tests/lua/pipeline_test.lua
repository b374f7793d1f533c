-- pipeline_test.lua: sfi.pipeline editing (insert, replace, wrap, remove, set), needs and
-- provides, the plan; and the install pipeline's step list.
local T = require "sfi.test"
local pipeline = require "sfi.pipeline"
local sfi = require "sfi.sfi"

local function steps(trace)
  local function s(name, extra)
    local t = { name = name, run = function (c) trace[#trace + 1] = name; c[name] = true end }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end
  return pipeline.new {
    s("a", { provides = { "a" } }),
    s("b", { needs = { "a" }, provides = { "b" }, optional = true }),
    s("c", { needs = { "b" }, irreversible = "licence",
      steps = { s("c1"), s("c2") } }),
  }
end

local function run(pl, c)
  for s in pl:each() do s.run(c) end
end

T.case("names in order, nested steps after their parent", function ()
  T.eq(steps({}):names(), { "a", "b", "c", "c1", "c2" })
end)

T.case("insert before and after, at any depth", function ()
  local trace = {}
  local pl = steps(trace)
  pl:insert_before("b", { name = "x", run = function () trace[#trace + 1] = "x" end })
  pl:insert_after("c1", { name = "y", run = function () end })
  T.eq(pl:names(), { "a", "x", "b", "c", "c1", "y", "c2" })
  run(pl, {})
  T.eq(trace, { "a", "x", "b", "c" })
end)

T.case("replace with a function keeps name and marks; with a table replaces the step", function ()
  local trace = {}
  local pl = steps(trace)
  pl:replace("c", function () trace[#trace + 1] = "new c" end)
  local c = pl:find("c")
  T.eq(c.irreversible, "licence")
  T.eq(c.replaced, true)
  pl:replace("b", { name = "b2", run = function () trace[#trace + 1] = "b2" end, provides = { "b" } })
  run(pl, {})
  T.eq(trace, { "a", "b2", "new c" })
  assert(pl:check {})
end)

T.case("wrap runs code around the step; wraps nest", function ()
  local trace = {}
  local pl = steps(trace)
  pl:wrap("b", function (c, inner) trace[#trace + 1] = "before"; inner(c); trace[#trace + 1] = "after" end)
  pl:wrap("b", function (c, inner) inner(c); inner(c) end)
  run(pl, {})
  T.eq(trace, { "a", "before", "b", "after", "before", "b", "after", "c" })
  T.eq(pl:find("b").wrapped, 2)
end)

T.case("only optional steps can be removed; needs are then checked", function ()
  local pl = steps({})
  T.raises("%is not optional", pl.remove, pl, "a")
  pl:remove("b")
  local ok, why = pl:check {}
  T.eq(ok, false)
  assert(why:find("step 'c' needs 'b'", 1, true), why)
end)

T.case("bad edits are bugs: unknown names, duplicates, malformed steps", function ()
  local pl = steps({})
  T.raises("%no step 'zz' in the pipeline %(steps: a, b, c, c1, c2%)", pl.insert_after, pl, "zz",
    { name = "q", run = print })
  T.raises("%already has a step 'c1'", pl.insert_after, pl, "a", { name = "c1", run = print })
  T.raises("%needs a run function", pl.append, pl, { name = "q" })
  T.raises("%unknown field 'irreversable'", pl.append, pl, { name = "q", run = print, irreversable = "rdp" })
  T.raises("%irreversible must be one of", pl.append, pl, { name = "q", run = print, irreversible = "maybe" })
  T.eq(pl:names(), { "a", "b", "c", "c1", "c2" })
end)

T.case("set changes step options and policy", function ()
  local pl = steps({})
  pl:set("c1", { retries = 2, policy = { retry = 4 } })
  T.eq(pl:find("c1").options, { retries = 2 })
  T.eq(pl:find("c1").policy, { retry = 4 })
end)

T.case("plan lists every step with its marks and depth", function ()
  local pl = steps({})
  pl:wrap("a", function (c, inner) return inner(c) end)
  local plan = pl:plan()
  T.eq(#plan, 5)
  T.eq(plan[3].name, "c")
  T.eq(plan[3].irreversible, "licence")
  T.eq(plan[4].depth, 1)
  T.eq(plan[1].wrapped, 1)
  T.eq(plan[2].optional, true)
end)

T.case("the install pipeline: step names, irreversible steps, needs satisfied", function ()
  local o = sfi.check_options { device = "stm32h753", image = "x.sfi", probe = "sim:stm32h753",
    licence = { kind = "file", path = "l.bin" } }
  local pl = sfi.pipeline(o)
  T.eq(pl:names(), { "licence source", "connect", "identify", "check device", "option bytes",
    "image", "resume", "chip certificate", "preflight", "licence", "activate security", "sfi write mode",
    "parts", "load part", "start rss", "rss value", "reconnect", "rss result", "security state",
    "final state", "abort" })
  local irr = {}
  for _, s in ipairs(pl:plan()) do if s.irreversible then irr[#irr + 1] = s.name end end
  T.eq(irr, { "licence", "parts", "abort" })
  assert(pl:check {})
  -- two pipelines never share step tables: editing one leaves the next untouched
  pl:replace("connect", function () end)
  T.eq(sfi.pipeline(o):find("connect").replaced, nil)
end)

T.case("install options are checked before anything is opened", function ()
  local a = { image = "x.sfi", probe = "sim:stm32h753", licence = "l.bin", strategy = "alternate", tries = 3 }
  T.raises("USAGE", sfi.options, a, { device = "stm32h753", write_mode = { SECURTY = 1 } })
  T.raises("USAGE", sfi.options, a, { device = "stm32h999" })
  T.raises("USAGE", sfi.options, a, { device = "stm32h753", hash = "off" })
  T.raises("USAGE", sfi.options, a, { device = "stm32h753", protocol = 3 })
  T.raises("USAGE", sfi.options, a, { device = "stm32h753", connect = "hot-plug" })
  T.raises("USAGE", sfi.options, a, { device = "stm32h753", quirks = { { bl_max = 0x90, hsh = "x" } } })
  T.raises("USAGE", sfi.options, a, { devise = "stm32h753" })
  local o = sfi.options(a, { device = "stm32h753", dev_id = 0x450 })
  T.eq(o.dev_id, 0x450)
  T.eq(o.licence, { kind = "file", path = "l.bin" })
end)

T.case("reconnect policies are checked when made, not at the first reconnect", function ()
  local flow = require "sfi.flow"
  local function usage(want, fn, t)
    local e = T.raises("USAGE", fn, t)
    assert(e.msg:find(want), e.msg)
  end
  usage("unknown connect mode 'hot%-plug'", flow.alternate, { connect = { "hot-plug" } })
  usage("unknown reset kind 'soft'", flow.alternate, { reset = { "sw", "soft" } })
  usage("connect_mode: unknown value", flow.fixed, { connect_mode = "underreset" })
  usage("delay_ms must be", flow.fixed, { delay_ms = -1 })
  usage("factor must be", flow.backoff, { factor = 0.5 })
  usage("unknown field 'delay' %(it takes: connect_mode, delay_ms, first_ms, reset_kind, tries%)",
    flow.fixed, { tries = 3, delay = 300 })
  usage("unknown field 'resets'", flow.alternate, { resets = { "hw" } })
end)

T.case("hash and protocol workarounds: pack, quirks keyed by bootloader, recipe override", function ()
  local device = require "sfi.device"
  local pack = device.find_part("stm32h753")
  local info = { bl = 0x90, rev = "V" }
  T.eq(sfi.device_rules(pack, info, {}).hash, "unsupported")
  local q = { quirks = { { bl_min = 0x91, hash = "optional", note = "newer RSS takes hashed images" } } }
  T.eq(sfi.device_rules(pack, info, q).hash, "unsupported")
  T.eq(sfi.device_rules(pack, { bl = 0x92, rev = "V" }, q).hash, "optional")
  T.eq(sfi.device_rules(pack, { bl = 0x92, rev = "V" }, q).notes, { "newer RSS takes hashed images" })
  T.eq(sfi.device_rules(pack, info, { hash = "required" }).hash, "required")
  T.eq(sfi.device_rules(pack, info, { protocol = 1 }).protocols, { 1 })
  local by_rev = { quirks = { { rev = { "V", "X" }, hash = "required" } } }
  T.eq(sfi.device_rules(pack, { bl = 0x90, rev = "Y" }, by_rev).hash, "unsupported")
  T.eq(sfi.device_rules(pack, { bl = 0x90, rev = "X" }, by_rev).hash, "required")
end)
