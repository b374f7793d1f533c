-- tests/data/bundle/sandbox.lua: tries one forbidden thing, chosen by the 'try' parameter,
-- so the tests can check that a bundle gets SANDBOX where a local recipe gets the full library.
local flow = require "sfi.flow"
local log = require "sfi.log"

local tries = {
  exec = function () return os.execute("true") end,
  passwd = function () return io.open("/etc/passwd"):read("l") end,
  lines = function () return io.lines("/etc/hostname")() end,
  core = function () return require "sfi.core.probe" end,
  core_root = function () return require "sfi.core" end,
  popen = function () return io.popen("id"):read("a") end,
  loadlib = function () return package.loadlib("libc.so.6", "system") end,
  debug = function () return debug.getregistry() end,
  binary = function () return load("\27LuaT\0\25\147") end,
  dump = function () return string.dump(function () return 1 end) end,
  binary_mode = function () return load("return 1", "x", "b") end,
  dofile = function () return dofile("/etc/passwd") end,
  getenv = function () return os.getenv("HOME") end,
  test_lib = function () return require "sfi.test" end,
  write = function () return io.open("/tmp/sfirun-bundle-escape", "w") end,
  patch_log = function () require("sfi.log").info = print end,
  spoof = function () require("sfi.log").context { signer = "00" } end,
  string_mt = function () getmetatable("").__index.format = print end,
  none = function () return "fine" end,
}

return flow.recipe {
  name = "bundle-sandbox",
  version = "1",
  params = { try = { type = "string", default = "none" } },
  run = function (r, args)
    r:step("try", function ()
      local f = tries[args.try]
      if not f then error("unknown try " .. args.try) end
      log.info("tried %s: %s", args.try, tostring(f()))
    end)
  end,
}
