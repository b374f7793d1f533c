-- tests/data/bundle/escape.lua: a hostile bundle. Each 'try' is one way out of the sandbox
-- through the trusted library (issue: bundles that cannot harm the station); the tests run
-- it and check that the run ends with SANDBOX (or fails) and leaves no trace.
-- Parameters: target (a station file the operator named, no permit), file (permitted
-- read:file), out (permitted write:out), other (a path the operator never typed).
local flow = require "sfi.flow"
local hsm = require "sfi.hsm"
local image = require "sfi.image"
local license = require "sfi.license"
local log = require "sfi.log"
local probe = require "sfi.probe"
local sfi = require "sfi.sfi"
local function util() return require "sfi.util" end

local function install(r, a, over)
  local o = {}
  for k, v in pairs(a) do o[k] = v end
  for k, v in pairs(over) do o[k] = v end
  return sfi.install(r, sfi.options(o, { device = "stm32h753", connect = "hotplug",
    write_mode = { SECURITY = 1, ST_RAM_SIZE = 3, BCM7 = 1 } }))
end

local tries = {
  -- 1. native code and programs
  so_write = function (_, a)
    image.write(a.other, io.open("data/note.txt"):read("a"))
    return hsm.open { uri = "pkcs11:token=x?module-path=" .. a.other }
  end,
  so_disk = function (_, a)
    return hsm.open { uri = "pkcs11:token=sfi?module-path=" .. a.module .. "&pin-source=file:" .. a.target }
  end,
  so_fields = function (_, a) return hsm.open { uri = a.hsm, module = a.other } end,
  so_provider = function (_, a)
    return license.provider { kind = "token", module = a.other, token = "sfi", pin_file = a.target }
  end,
  so_install = function (r, a)
    return install(r, a, { hsm = "pkcs11:token=sfi?module-path=" .. a.other .. "&pin-source=file:" .. a.target })
  end,
  program = function (_, a)
    local p = license.provider { kind = "command", command = "/usr/bin/touch " .. a.other }
    return p:get(string.rep("\0", 136), {})
  end,
  program_install = function (r, a)
    return install(r, a, { licence_command = "/usr/bin/touch " .. a.other })
  end,
  -- 2. writes
  image_write = function (_, a) return image.write(a.target, "overwritten") end,
  util_write = function (_, a) return util().write_file(a.other, "created") end,
  write_below = function (_, a) return util().write_file(a.out .. "/../" .. "escape.txt", "x") end,
  -- 3. knobs
  knob_r_probe = function (r, a) return r:probe { uri = "sim:stm32h753?state=" .. a.other } end,
  knob_open = function (_, a) return probe.open("sim:stm32h753?state=" .. a.other) end,
  knob_record = function (_, a) return probe.open { uri = a.probe, faults = { record = a.other } } end,
  knob_install = function (r, a) return install(r, a, { probe = "sim:stm32h753?state=" .. a.other }) end,
  -- 4. reads
  secret = function (_, a) return log.info("key %q", image.secret(a.target, 16, "key")) end,
  read_secret = function (_, a) return log.info("%q", license.read_secret(a.target, { 16 }, "key")) end,
  image_load = function (_, a) return image.load(a.target) end,
  stat = function (_, a) return util().stat(a.target) end,
  -- 5. the station's token with a module and PIN the bundle chose
  hsm_login = function (_, a)
    local h = hsm.open { uri = "pkcs11:token=" .. a.token .. "?module-path=" .. a.module ..
      "&pin-source=file:" .. a.target }
    return log.info("counter %d", h:counter())
  end,
  hsm_login_install = function (r, a)
    return install(r, a, { hsm = "pkcs11:token=" .. a.token .. "?module-path=" .. a.module ..
      "&pin-source=file:" .. a.target })
  end,
  -- 6. patching the library
  class_mt = function (r)
    local mt = getmetatable(r)
    mt.__index.step = function () end
  end,
  image_mt = function (_, a)
    local img = image.load(a.file)
    getmetatable(img).__index.header_bytes = function () return "" end
  end,
  run_context = function (r) r.step = function () end end,
  recipe_field = function (r) r.recipe.run = function () end end,
  pairs_view = function (r, a)
    local _, real = pairs(flow)
    rawset(real, "retry", function () return "patched" end)
    real.recipe = nil
    rawset(image, "load", function () return "patched" end)
    rawset(string, "format", function () return "patched" end)
    -- the library goes on with its own functions: the install still checks its image
    return install(r, a, {})
  end,
  private = function (r, a) return r:probe(a.probe)._u end,
  -- 7. what a refusal tells
  exists = function (_, a) return image.load(a.target) end,
  missing = function (_, a) return image.load(a.other) end,
  -- allowed
  read_permitted = function (_, a) return log.info("read %d bytes", #io.open(a.file, "rb"):read("a")) end,
  write_permitted = function (_, a) return util().write_file(a.out .. "/label.txt", "label") end,
}

return flow.recipe {
  name = "bundle-escape",
  version = "1",
  params = { try = "string", target = "path?", other = "path?", file = "path?", out = "path?",
    module = "string?", token = "string?", hsm = "uri?",
    probe = { type = "uri", default = "sim:stm32h753" }, image = "path?", key = "path?", nonce = "path?" },
  permissions = { "read:file", "write:out" },
  run = function (r, a)
    r:step("try", function ()
      local f = tries[a.try]
      if not f then error("unknown try " .. a.try) end
      local v = f(r, a)
      log.info("escape %s returned %s", a.try, tostring(v))
    end)
  end,
}
