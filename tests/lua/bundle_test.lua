-- tests/lua/bundle_test.lua: sfi.bundle end to end in process: create -> verify -> run,
-- tampering, trust, hostile archives (tar and zip, built here), the sandbox, a compression
-- bomb and the sfirun version range.
local T = require "sfi.test"
local bundle = require "sfi.bundle"
local raw = require "sfi.core.bundle"
local fx = require "bundle_fixture"
local log = require "sfi.log"

log.configure { level = "warn" }

local dir = T.tmpdir()
local oem = fx.keys(dir, "oem")
local other = fx.keys(dir, "other")
local ec = fx.keys(dir, "ec", "ec")
local image = dir .. "/app.sfi"
T.writefile(image, string.rep("\xA5", 1000))

T.case("create -> verify -> run (tar.gz, Ed25519)", function ()
  local path = fx.make(dir, "ok.lua", oem)
  local m = bundle.verify(path, oem.pub)
  T.eq(m.name, "bundle-ok", "name from the recipe")
  T.eq(m.version, "2.1", "version from the recipe")
  T.eq(m.entry, "recipes/ok.lua", "entry")
  T.eq(m.format, "tar.gz", "format")
  T.eq(m.permits, { { access = "read", param = "image" } }, "permits from the recipe")
  local paths = {}
  for _, f in ipairs(m.files) do paths[#paths + 1] = f.path end
  T.eq(paths, { "data/note.txt", "recipes/ok.lua", "scripts/acme/util.lua" }, "members")
  T.eq(m.signer, raw.fingerprint(T.readfile(oem.pub)), "signer fingerprint")
  T.eq(bundle.run_file(path, { image = image }, { trust = oem.pub }), 0, "run")
end)

T.case("zip and P-256 bundles verify and run; creation is reproducible", function ()
  local a = fx.make(dir, "ok.lua", ec, { format = "zip", out = dir .. "/a.sfib" })
  local b = fx.make(dir, "ok.lua", ec, { format = "zip", out = dir .. "/b.sfib" })
  T.eq(bundle.verify(a, ec.pub).format, "zip", "format")
  T.eq(bundle.run_file(a, { image = image }, { trust = ec.pub }), 0, "run")
  -- ECDSA signatures are randomized: compare everything but the signature member
  local x <close> = bundle.open(a, ec.pub)
  local y <close> = bundle.open(b, ec.pub)
  T.eq(x:read("manifest"), y:read("manifest"), "same manifest")
  local e1 = fx.make(dir, "ok.lua", oem, { out = dir .. "/e1.sfib" })
  local e2 = fx.make(dir, "ok.lua", oem, { out = dir .. "/e2.sfib" })
  T.eq(T.readfile(e1) == T.readfile(e2), true, "Ed25519 tar.gz bundles are byte-identical")
end)

-- Members of a verified bundle, in archive order, as raw writer entries.
local function entries(path, key)
  local b <close> = bundle.open(path, key.pub)
  local out = {}
  for _, p in ipairs { "data/note.txt", "manifest", "manifest.sig", "recipes/ok.lua",
      "scripts/acme/util.lua" } do
    out[#out + 1] = { path = p, data = b:read(p) }
  end
  return out
end

local function flip(s)
  local i = #s // 2 + 1
  return s:sub(1, i - 1) .. string.char(s:byte(i) ~ 1) .. s:sub(i + 1)
end

T.case("one flipped byte in any member: refused, naming the member", function ()
  local path = fx.make(dir, "ok.lua", oem)
  for _, fmt in ipairs { "tar.gz", "zip" } do
    for i = 1, 5 do
      local ents = entries(path, oem)
      ents[i].data = flip(ents[i].data)
      local err = T.raises("AUTH", bundle.open, raw.write_archive(ents, fmt), oem.pub)
      local name = ents[i].path
      local want = (name == "manifest" or name == "manifest.sig") and "manifest" or name
      assert(tostring(err):find(want, 1, true), fmt .. " " .. name .. ": " .. tostring(err))
    end
  end
  -- the same through the runner: nothing runs
  local ents = entries(path, oem)
  ents[4].data = ents[4].data .. "\nos.execute(\"id\")\n"
  local bad = dir .. "/tampered.sfib"
  T.writefile(bad, raw.write_archive(ents, "tar.gz"))
  local err = T.raises("AUTH", bundle.run_file, bad, { image = image }, { trust = oem.pub })
  assert(tostring(err):find("recipes/ok.lua", 1, true), tostring(err))
end)

T.case("wrong trust key, missing trust key, unsigned bundle", function ()
  local path = fx.make(dir, "ok.lua", oem)
  local err = T.raises("AUTH", bundle.verify, path, other.pub)
  assert(tostring(err):find("not by the trusted key", 1, true), tostring(err))
  T.raises("USAGE", bundle.run_file, path, {}, {})
  local ents = entries(path, oem)
  table.remove(ents, 3)
  err = T.raises("AUTH", bundle.open, raw.write_archive(ents), oem.pub)
  assert(tostring(err):find("manifest.sig", 1, true), tostring(err))
end)

T.case("hostile archives (tar and zip) are refused before anything runs", function ()
  local path = fx.make(dir, "ok.lua", oem)
  local hostile = {
    { name = "dot-dot", e = { path = "../evil.lua", data = "x" } },
    { name = "dot-dot inside", e = { path = "scripts/../../evil.lua", data = "x" } },
    { name = "absolute", e = { path = "/tmp/evil.lua", data = "x" } },
    { name = "symlink", e = { path = "evil.lua", kind = "symlink", link = "/etc/passwd" } },
    { name = "hardlink", e = { path = "evil.lua", kind = "hardlink", link = "recipes/ok.lua" },
      tar_only = true },
    { name = "device", e = { path = "evil", kind = "chardev" }, tar_only = true },
    { name = "fifo", e = { path = "evil", kind = "fifo" }, tar_only = true },
    { name = "directory", e = { path = "evil", kind = "dir" } },
    { name = "duplicate", e = { path = "recipes/ok.lua", data = "return 1" } },
    { name = "unlisted", e = { path = "scripts/acme/extra.lua", data = "return 1" }, code = "AUTH" },
  }
  for _, fmt in ipairs { "tar.gz", "zip" } do
    for _, h in ipairs(hostile) do
      if fmt == "tar.gz" or not h.tar_only then
        local ents = entries(path, oem)
        ents[#ents + 1] = h.e
        local err = T.raises(h.code or "FORMAT", bundle.open, raw.write_archive(ents, fmt), oem.pub)
        assert(tostring(err):find(h.e.path, 1, true), fmt .. " " .. h.name .. ": " .. tostring(err))
      end
    end
  end
end)

T.case("sandbox: forbidden calls raise SANDBOX naming the call", function ()
  local path = fx.make(dir, "sandbox.lua", oem)
  local want = {
    exec = "os.execute", passwd = "io.open: SANDBOX: denied", lines = "io.open: SANDBOX: denied",
    core = "sfi.core.probe", core_root = "sfi.core", popen = "io.popen",
    loadlib = "package.loadlib", debug = "debug.getregistry", binary = "binary chunk",
    binary_mode = "mode 'b'", dofile = "dofile", getenv = "os.getenv", test_lib = "sfi.test",
    write = "io.open: SANDBOX: denied", patch_log = "sfi.log.info", dump = "string.dump",
    spoof = "log context field 'signer'",
  }
  for try, what in pairs(want) do
    local err = T.raises("SANDBOX", bundle.run_file, path, { try = try }, { trust = oem.pub })
    local s = tostring(err)
    assert(s:find(what, 1, true) and (s:find("not allowed in a bundle", 1, true) or
      s:find("SANDBOX: denied", 1, true)), try .. ": " .. s)
    -- a refused path is never repeated: the message is the same whether the file exists
    assert(not s:find("/etc/", 1, true) and not s:find("sfirun-bundle-escape", 1, true), try .. ": " .. s)
  end
  T.eq(bundle.run_file(path, { try = "none" }, { trust = oem.pub }), 0, "harmless run")
  -- the shared string metatable is not handed out
  local err = T.raises("%index a nil value", function ()
    local ok, e = pcall(bundle.run_file, path, { try = "string_mt" }, { trust = oem.pub })
    assert(not ok)
    error(tostring(e), 0)
  end)
  assert(err:find("attempt to index a nil value", 1, true), err)
  T.eq(string.format("%d", 7), "7", "string.format intact")
  T.eq(io.open("/tmp/sfirun-bundle-escape"), nil, "no file written")
end)

T.case("a trusted local recipe keeps the full library", function ()
  local run = require "sfi.cli.run"
  local desc = run.load("tests/data/bundle/sandbox.lua")
  T.eq(run.execute(desc, { try = "getenv" }, {}), 0, "os.getenv allowed locally")
end)

T.case("a compression bomb stops at the size limit, quickly", function ()
  local bomb = raw.write_archive({ { path = "zeros.bin", zeros = 200 * 1024 * 1024 } }, "tar.gz")
  assert(#bomb < 1024 * 1024, "bomb is small: " .. #bomb)
  local t0 = os.clock()
  local err = T.raises("FORMAT", bundle.open, bomb, oem.pub)
  assert(tostring(err):find("zeros.bin", 1, true) and tostring(err):find("limit", 1, true),
    tostring(err))
  assert(os.clock() - t0 < 5, "took " .. (os.clock() - t0) .. " s")
  local zbomb = raw.write_archive({ { path = "zeros.bin", zeros = 200 * 1024 * 1024 } }, "zip")
  T.raises("FORMAT", bundle.open, zbomb, oem.pub)
end)

T.case("a bundle for another sfirun version range is refused, saying so", function ()
  local path = fx.make(dir, "ok.lua", oem, { sfirun = ">=0.2 <0.3", out = dir .. "/future.sfib" })
  local err = T.raises("UNSUPPORTED", bundle.run_file, path, { image = image }, { trust = oem.pub })
  assert(tostring(err):find(">=0.2 <0.3", 1, true) and tostring(err):find(raw.sfirun_version, 1, true),
    tostring(err))
end)

T.case("the recipe may read only the permitted parameter's file", function ()
  local path = fx.make(dir, "ok.lua", oem, { permits = {}, out = dir .. "/nopermit.sfib" })
  local err = T.raises("SANDBOX", bundle.run_file, path, { image = image }, { trust = oem.pub })
  T.eq(err.msg, "denied", "the message")
  T.eq(err.step, "inputs", "the step")
end)
