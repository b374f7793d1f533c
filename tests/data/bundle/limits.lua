-- tests/data/bundle/limits.lua: a bundle that misbehaves in one way, chosen by 'try': it loops,
-- recurses, allocates or hides its work in coroutines and pcalls. The station's limits must end
-- each within seconds with LIMIT; 'garbage' and 'slow' are well behaved and must pass.
local flow = require "sfi.flow"
local log = require "sfi.log"

local tries = {
  loop = function () while true do end end,
  tail = function ()
    local function f(n) return f(n + 1) end
    return f(1)
  end,
  recurse = function ()
    local function f(n) return 1 + f(n + 1) end
    return f(1)
  end,
  coroutines = function ()
    while true do coroutine.wrap(function () for _ = 1, 500 do end end)() end
  end,
  catch_all = function ()
    while true do
      pcall(function () while true do end end)
      pcall(error, "again")
    end
  end,
  catch_memory = function ()
    while true do pcall(string.rep, "x", 1 << 30) end
  end,
  doubling = function ()
    local s = "x"
    while true do s = s .. s end
  end,
  big_strings = function ()
    local t = {}
    for i = 1, 1e9 do t[i] = string.rep("x", 1 << 20) .. i end
    return #t
  end,
  small_tables = function ()
    local t = {}
    for i = 1, 1e9 do t[i] = { i } end
    return #t
  end,
  pattern = function (r, a)
    r:probe(a.probe) -- the run must still close it
    return (string.rep("a", 200000)):find(".-.-.-.-.-.-.-.-b")
  end,
  objects = function ()
    local errors = require "sfi.error"
    for i = 1, 1e7 do errors.new("TARGET", "x", "object " .. i) end
  end,
  garbage = function ()
    local n = 0
    for i = 1, 300 do n = n + #(string.rep("x", 1 << 20) .. i) end
    return n
  end,
  slow = function (r, a)
    local p = r:probe(a.probe)
    for _ = 1, a.ops do p:read32(0x08000000) end
    return "waited"
  end,
}

return flow.recipe {
  name = "bundle-limits",
  version = "1",
  params = { try = "string", probe = { type = "uri", default = "sim:stm32h753" },
    ops = { type = "integer", default = 10 } },
  run = function (r, a)
    r:step("spin", function ()
      local f = tries[a.try]
      if not f then error("unknown try " .. a.try) end
      log.info("%s: %s", a.try, tostring(f(r, a)))
    end)
  end,
}
