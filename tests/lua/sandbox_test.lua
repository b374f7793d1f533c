-- tests/lua/sandbox_test.lua: a signed bundle cannot harm the station. Each case is one way
-- out through the trusted library (tests/data/bundle/escape.lua): it must end with SANDBOX,
-- leave no trace (victim unchanged, nothing created, no module loaded) and tell nothing about
-- the files it was denied. A full install as a bundle still runs.
local T = require "sfi.test"
local bundle = require "sfi.bundle"
local fx = require "bundle_fixture"
local gen = require "fwgen"
local log = require "sfi.log"
local softhsm = require "softhsm"

log.configure { level = "error" }

local dir = T.tmpdir()
local oem = fx.keys(dir, "oem")
local path = fx.make(dir, "escape.lua", oem)
local SFIRUN = os.getenv("SFIRUN") or "sfirun"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The station: its secret files, a permitted input and output directory, a path never typed.
local victim = dir .. "/station-key.bin"
local VICTIM <const> = "\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x00"
T.writefile(victim, VICTIM)
local other = dir .. "/created-by-bundle"
local outdir = dir .. "/labels"
os.execute("mkdir -p " .. q(outdir))

-- An SFI image for STM32H753 and its development key (the licence source of a full install).
local img = dir .. "/fw.sfi"
T.writefile(dir .. "/fw.bin", gen.bytes(3000, 7))
T.writefile(dir .. "/key.bin", "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f")
T.writefile(dir .. "/nonce.bin", "\xca\xfe\xba\xbe\xfa\xce\xdb\xad\xde\xca\xf8\x88")
T.writefile(dir .. "/ob.csv", table.concat({
  "FOPTSR_PRG,0x1BFEAAF0", "FPRAR_PRG_A,0x000000FF", "FPRAR_PRG_B,0x000000FF",
  "FSCAR_PRG_A,0x000000FF", "FSCAR_PRG_B,0x000000FF", "FWPSN_PRG_A,0x000000FF",
  "FWPSN_PRG_B,0x000000FF", "FBOOT7_PRG,0x1FF00800", "RESERVED,0x10000810" }, "\n") .. "\n")
do
  local code, out = T.sh(string.format("%s image build --devid 0x450 --firmware %s 0x08000000 " ..
    "--key %s --nonce %s --ob %s --hash 0 --protocol 2 -o %s", SFIRUN, q(dir .. "/fw.bin"),
    q(dir .. "/key.bin"), q(dir .. "/nonce.bin"), q(dir .. "/ob.csv"), q(img)))
  assert(code == 0, out)
end

local function sets(try, more)
  local s = { try = try, target = victim, other = other, file = img, out = outdir }
  for k, v in pairs(more or {}) do s[k] = v end
  return s
end

-- Runs one escape; it must raise SANDBOX and leave the station as it was.
local function refused(try, more, opts)
  opts = opts or {}
  opts.trust = oem.pub
  local err = T.raises("SANDBOX", bundle.run_file, path, sets(try, more), opts)
  T.eq(T.readfile(victim), VICTIM, try .. ": station file unchanged")
  T.eq(io.open(other), nil, try .. ": nothing created")
  assert(type(err.step) == "string", try .. ": the step is named")
  return err
end

T.case("1. native code: no PKCS#11 module or program the bundle chose", function ()
  -- a bundled .so written out: the write is refused before any module is named
  T.eq(refused("so_write").op, "image.write", "so_write")
  -- a module on disk, through the URI, a field, a provider, or the install's licence source
  refused("so_disk", { module = softhsm.MODULE })
  local e = refused("so_fields", { hsm = "pkcs11:token=sfi?module-path=" .. softhsm.MODULE })
  assert(tostring(e):find("module", 1, true), tostring(e))
  refused("so_provider")
  refused("so_install", { image = img })
  -- a licence program the bundle chose, directly or through the install
  refused("program")
  refused("program_install", { image = img })
end)

T.case("2. no file written: image.write, util.write_file, '..' out of a permitted directory", function ()
  T.eq(refused("image_write").op, "image.write", "image.write")
  T.eq(refused("util_write").op, "util.write_file", "util.write_file")
  refused("write_below")
  T.eq(io.open(dir .. "/escape.txt"), nil, "nothing beside the permitted directory")
end)

T.case("3. probe file knobs: state= and record= via r:probe, probe.open and the install", function ()
  refused("knob_r_probe", { probe = "sim:stm32h753" }, { probe = "sim:stm32h753" })
  refused("knob_open", { probe = "sim:stm32h753" }, { probe = "sim:stm32h753" })
  refused("knob_record", { probe = "sim:stm32h753" }, { probe = "sim:stm32h753" })
  refused("knob_install", { image = img, key = dir .. "/key.bin", nonce = dir .. "/nonce.bin" })
end)

T.case("4. no station file read: image.secret, license.read_secret, image.load, util.stat", function ()
  for _, try in ipairs { "secret", "read_secret", "image_load", "stat" } do
    local e = refused(try)
    T.eq(e.msg, "denied", try)
    assert(not tostring(e):find(victim, 1, true), tostring(e))
  end
end)

T.case("5. the station's SoftHSM token with a module and PIN file the bundle chose", function ()
  local tok = softhsm.token("sfi")
  local env = "SOFTHSM2_CONF=" .. q(tok.conf)
  -- the token really opens with that URI outside a bundle (so the refusal is the sandbox's)
  local code, out = T.sh(string.format("%s %s hsm info --hsm %s", env, SFIRUN, q(tok.uri)))
  assert(code == 0 or out:find("provision", 1, true), out)
  local more = { module = softhsm.MODULE, token = "sfi" }
  more.target = tok.pin_file
  for _, try in ipairs { "hsm_login", "hsm_login_install" } do
    code, out = T.sh(string.format("%s SFIRUN_STATE_DIR=%s %s %s --trust %s --set try=%s " ..
      "--set module=%s --set token=sfi --set target=%s --set image=%s", env, q(dir .. "/state"),
      SFIRUN, q(path), q(oem.pub), try, q(more.module), q(tok.pin_file), q(img)))
    T.eq(code, 1, try .. " exit code: " .. out)
    assert(out:find("SANDBOX", 1, true), out)
    assert(not out:find("counter", 1, true), out)
  end
end)

T.case("6. library classes and modules cannot be patched", function ()
  local flow = require "sfi.flow"
  local image = require "sfi.image"
  local before = { retry = flow.retry, recipe = flow.recipe, load = image.load,
    step = getmetatable(flow.new_run({}, {})).__index.step, format = string.format }
  for _, try in ipairs { "class_mt", "image_mt" } do
    local ok, err = pcall(bundle.run_file, path, sets(try), { trust = oem.pub })
    assert(not ok and tostring(err):find("index a boolean", 1, true), try .. ": " .. tostring(err))
  end
  local e = refused("run_context")
  assert(tostring(e):find("sfi.flow.run.step", 1, true), tostring(e))
  refused("recipe_field")
  e = refused("private", { probe = "sim:stm32h753" }, { probe = "sim:stm32h753" })
  assert(tostring(e):find("sfi.probe._u", 1, true), tostring(e))
  -- the bundle's copy of flow, image and string is its own: a full install runs on the library's
  T.eq(bundle.run_file(path, sets("pairs_view", { image = img, key = dir .. "/key.bin",
    nonce = dir .. "/nonce.bin", probe = "sim:stm32h753" }), { trust = oem.pub }), 0, "install")
  local after = { retry = flow.retry, recipe = flow.recipe, load = image.load,
    step = getmetatable(flow.new_run({}, {})).__index.step, format = string.format }
  for k, v in pairs(before) do T.eq(after[k] == v, true, k .. " unchanged") end
  T.eq(string.format("%d", 7), "7", "string.format works")
end)

T.case("7. a refusal tells nothing: the same message for an existing and a missing file", function ()
  local a = refused("exists")
  local b = refused("missing")
  T.eq(tostring(a), tostring(b), "same message")
  T.eq(a.detail, b.detail, "same detail")
  T.eq(tostring(a), "image.load: SANDBOX: denied", "only 'denied'")
end)

T.case("what the manifest permits still works", function ()
  T.eq(bundle.run_file(path, sets("read_permitted"), { trust = oem.pub }), 0, "read:file")
  T.eq(bundle.run_file(path, sets("write_permitted"), { trust = oem.pub }), 0, "write:out")
  T.eq(T.readfile(outdir .. "/label.txt"), "label", "written below the permitted directory")
end)

T.case("a full h753 install as a bundle with the station's SoftHSM token; the examples too", function ()
  local tok = softhsm.token("station")
  local d = T.tmpdir()
  -- a plausible vector table (initial SP in RAM, a Thumb reset address in flash) for post_check
  T.writefile(d .. "/app.bin", string.pack("<I4I4", 0x20020000, 0x08000401) .. gen.bytes(4000, 3))
  local code, out = T.sh(string.format("%s image build --devid 0x450 --firmware %s 0x08000000 " ..
    "--key %s --nonce %s --ob %s --hash 0 --protocol 2 -o %s", SFIRUN, q(d .. "/app.bin"),
    q(tok.dir .. "/key.bin"), q(tok.dir .. "/nonce.bin"), q(dir .. "/ob.csv"), q(d .. "/fw.sfi")))
  assert(code == 0, out)
  code, out = T.sh(string.format("%s %s hsm provision --hsm %s --key %s --nonce %s --fwid ACME " ..
    "--max 10 --ca %s --journal %s", tok.env, SFIRUN, q(tok.uri), q(tok.dir .. "/key.bin"),
    q(tok.dir .. "/nonce.bin"), q(softhsm.SRC .. "/vendor/sim/ca-pub.pem"), q(d .. "/journal.sqlite")))
  assert(code == 0, out)
  os.execute("mkdir -p " .. q(d .. "/labels"))
  local recipes = {
    { "recipes/h753.lua" },
    { "recipes/examples/h753_own_reconnect.lua" },
    { "recipes/examples/h753_post_check.lua" },
    { "recipes/examples/h753_serial_label.lua", "--permit write:label_dir",
      "--set label_dir=" .. q(d .. "/labels") },
  }
  for i, r in ipairs(recipes) do
    local sfib = string.format("%s/r%d.sfib", d, i)
    code, out = T.sh(string.format("%s bundle create %s --sign %s -o %s %s", SFIRUN, r[1],
      q(oem.priv), q(sfib), r[2] or ""))
    assert(code == 0, out)
    code, out = T.sh(string.format("%s SFIRUN_STATE_DIR=%s %s %s --trust %s --set image=%s --hsm %s " ..
      "--probe %s --journal %s %s", tok.env, q(d .. "/state"), SFIRUN, q(sfib), q(oem.pub),
      q(d .. "/fw.sfi"), q(tok.uri), q("sim:stm32h753?state=" .. d .. "/chip" .. i .. ".state"),
      q(d .. "/journal.sqlite"), r[3] or ""))
    T.eq(code, 0, r[1] .. ": " .. out)
    assert(out:find("finished successfully", 1, true), out)
  end
  local _, ls = T.sh("ls " .. q(d .. "/labels"))
  assert(ls:find("%.txt"), "a label was written: " .. ls)
end)

T.case("the guard: unlisted sfi.core functions and unknown probe fields are refused while a bundle runs", function ()
  local guard = require "sfi.guard"
  local core = require "sfi.core"
  local cprobe = require "sfi.core.probe"
  local cbundle = require "sfi.core.bundle"
  local refusals = 0
  local deny = function () return false end
  guard.enter { allow_path = deny, allow_probe = function () return true end, allow_hsm = deny,
    allow_program = deny,
    refuse = function () refusals = refusals + 1 end }
  local ok1, e1 = pcall(core.set_log, { level = "debug" })
  local ok2, e2 = pcall(cbundle.write_archive, {})
  local ok3, e3 = pcall(cprobe.open, { driver = "sim", sim = { part = "stm32h753", script = "x" } })
  local ok4, e4 = pcall(core.run, { "/bin/true" }, 1000)
  local ok5, e5 = pcall(io.open, victim, "rb")
  -- a GDB server that is not the station's probe
  local pol = require("sfi.sandbox").station({ permits = {} }, {}, { probe = "gdb:127.0.0.1:3333" })
  local okg = pol.allow_probe { driver = "gdb", gdb = { host = "127.0.0.1", port = 3333 } }
  local badg = pol.allow_probe { driver = "gdb", gdb = { host = "10.0.0.9", port = 3333 } }
  local ttyg = pol.allow_probe { driver = "gdb", gdb = { tty = "/dev/ttyACM0" } }
  local now = core.now_ms() -- listed: harmless
  guard.leave()
  for i, r in ipairs { { ok1, e1 }, { ok2, e2 }, { ok3, e3 }, { ok4, e4 }, { ok5, e5 } } do
    T.eq(r[1], false, "call " .. i .. " refused")
    T.eq(r[2].code, "SANDBOX", "call " .. i .. ": " .. tostring(r[2]))
  end
  assert(tostring(e1):find("sfi.core.set_log is not allowed while a bundle runs", 1, true), tostring(e1))
  assert(tostring(e3):find("probe option 'script'", 1, true), tostring(e3))
  T.eq(refusals, 5, "each refusal reported to the runner")
  T.eq({ okg, badg, ttyg }, { true, false, false }, "only the station's GDB server")
  T.eq(type(now), "number", "now_ms works")
  T.eq(T.readfile(victim), VICTIM, "readable again once the bundle has ended")
end)
