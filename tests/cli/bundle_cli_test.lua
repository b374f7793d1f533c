-- tests/cli/bundle_cli_test.lua: `sfirun bundle create|verify` and `sfirun X.sfib` as a user
-- runs them: output, JSON events carrying the bundle identity, and exit codes.
local T = require "sfi.test"
local fx = require "bundle_fixture"
local raw = require "sfi.core.bundle"

local SFIRUN = os.getenv("SFIRUN") or "sfirun"
local dir = T.tmpdir()
local oem = fx.keys(dir, "oem")
local other = fx.keys(dir, "other")
local image = dir .. "/app.sfi"
T.writefile(image, string.rep("\1", 321))

local function run(fmt, ...)
  return T.sh(SFIRUN .. " " .. string.format(fmt, ...))
end

local out = dir .. "/ok.sfib"

T.case("bundle create writes a signed bundle and says what it holds", function ()
  local code, text = run("bundle create tests/data/bundle/ok.lua -C tests/data/bundle " ..
    "--include scripts --include data --sign %s -o %s", oem.priv, out)
  T.eq(code, 0, "exit code\n" .. text)
  assert(text:find("Bundle bundle-ok 2.1 written to " .. out, 1, true), text)
  assert(text:find(raw.fingerprint(T.readfile(oem.pub)), 1, true), "signer printed: " .. text)
  T.eq(io.open(out .. ".tmp"), nil, "no temporary file left")
end)

T.case("bundle verify: OK with the right key, exit 1 with another", function ()
  local code, text = run("bundle verify %s --trust %s", out, oem.pub)
  T.eq(code, 0, "exit code\n" .. text)
  assert(text:find("Bundle bundle-ok 2.1 OK: 3 files", 1, true), text)
  assert(text:find("permits read:image", 1, true), text)
  code, text = run("bundle verify %s --trust %s --json", out, oem.pub)
  T.eq(code, 0, "exit code\n" .. text)
  assert(text:find('"event":"bundle_verified"', 1, true) and text:find('"name":"bundle-ok"', 1, true), text)
  code, text = run("bundle verify %s --trust %s", out, other.pub)
  T.eq(code, 1, "exit code with another key\n" .. text)
  assert(text:find("AUTH", 1, true) and text:find("not by the trusted key", 1, true), text)
end)

T.case("sfirun X.sfib runs it; JSON events carry bundle, version and signer", function ()
  local code, text = run("%s --trust %s --set image=%s --json", out, oem.pub, image)
  T.eq(code, 0, "exit code\n" .. text)
  local fp = raw.fingerprint(T.readfile(oem.pub))
  local n = 0
  for line in text:gmatch("[^\n]+") do
    if line:find('"event":"start"', 1, true) or line:find('"event":"result"', 1, true) then
      assert(line:find('"bundle":"bundle-ok"', 1, true) and line:find('"bundle_version":"2.1"', 1, true)
        and line:find('"signer":"' .. fp .. '"', 1, true), line)
      n = n + 1
    end
  end
  T.eq(n, 2, "start and result events")
  assert(text:find("READ! image 321 bytes", 1, true), text)
end)

T.case("sfirun X.sfib without --trust is a usage error (exit 2)", function ()
  local code, text = run("%s --set image=%s", out, image)
  T.eq(code, 2, "exit code\n" .. text)
  assert(text:find("--trust", 1, true), text)
end)

T.case("a tampered bundle does not run (exit 1, member named); a hostile one exits 2", function ()
  local b <close> = require("sfi.bundle").open(out, oem.pub)
  local ents = {}
  for _, p in ipairs { "data/note.txt", "manifest", "manifest.sig", "recipes/ok.lua",
      "scripts/acme/util.lua" } do
    ents[#ents + 1] = { path = p, data = b:read(p) }
  end
  ents[1].data = "calibration table v4\n"
  local bad = dir .. "/tampered.sfib"
  T.writefile(bad, raw.write_archive(ents, "zip"))
  local code, text = run("%s --trust %s --set image=%s", bad, oem.pub, image)
  T.eq(code, 1, "exit code\n" .. text)
  assert(text:find("data/note.txt", 1, true) and not text:find("READ!", 1, true), text)
  ents[1].data = "calibration table v3\n"
  ents[#ents + 1] = { path = "../../evil.lua", data = "os.execute('id')" }
  T.writefile(bad, raw.write_archive(ents, "tar.gz"))
  code, text = run("%s --trust %s --set image=%s", bad, oem.pub, image)
  T.eq(code, 2, "exit code\n" .. text)
  assert(text:find("FORMAT", 1, true) and text:find("'..' component", 1, true), text)
end)

T.case("a sandbox violation fails the run with SANDBOX (exit 1)", function ()
  local sb = dir .. "/sandbox.sfib"
  local code, text = run("bundle create tests/data/bundle/sandbox.lua --sign %s -o %s", oem.priv, sb)
  T.eq(code, 0, "create\n" .. text)
  code, text = run("%s --trust %s --set try=exec", sb, oem.pub)
  T.eq(code, 1, "exit code\n" .. text)
  assert(text:find("SANDBOX: os.execute is not allowed in a bundle", 1, true), text)
end)

T.case("bundle create refuses a missing key or output (exit 2)", function ()
  local code, text = run("bundle create tests/data/bundle/ok.lua -o %s/x.sfib", dir)
  T.eq(code, 2, "exit code\n" .. text)
  assert(text:find("--sign", 1, true), text)
end)

T.case("station limits: a runaway bundle ends with LIMIT (exit 1), --json names the step", function ()
  local lim = dir .. "/limits.sfib"
  local code, text = run("bundle create tests/data/bundle/limits.lua --sign %s -o %s", oem.priv, lim)
  T.eq(code, 0, "create\n" .. text)
  code, text = run("%s --trust %s --set try=loop --max-instructions 2M", lim, oem.pub)
  T.eq(code, 1, "exit code\n" .. text)
  assert(text:find("LIMIT: the bundle ran more than 2000000 Lua instructions (--max-instructions)",
    1, true), text)
  assert(not text:find("traceback", 1, true) and not text:find("scripts/sfi", 1, true), text)
  code, text = run("%s --trust %s --set try=doubling --max-memory 16M --json", lim, oem.pub)
  T.eq(code, 1, "exit code\n" .. text)
  assert(text:find('"code":"LIMIT"', 1, true) and text:find('"step":"spin"', 1, true), text)
  code, text = run("%s --trust %s --set try=loop --max-cpu never", lim, oem.pub)
  T.eq(code, 2, "a bad limit is a usage error\n" .. text)
  assert(text:find("--max-cpu", 1, true), text)
end)

T.case("the limit options are listed in --help", function ()
  local _, text = run("--help")
  for _, o in ipairs { "--max-instructions", "--max-cpu", "--max-memory", "--step-timeout",
      "--run-timeout" } do
    assert(text:find(o, 1, true), o .. "\n" .. text)
  end
end)
