-- cli_test.lua: the sfirun command line: exit codes, one-line errors, --json, --describe, Ctrl-C.
local T = require "sfi.test"

local SFIRUN = assert(os.getenv("SFIRUN"), "SFIRUN not set")
local R = "tests/data/recipes/"

local function run(args)
  return T.sh(SFIRUN .. " " .. args)
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

T.case("--version names every library", function ()
  local code, out = run("--version")
  T.eq(code, 0)
  for _, w in ipairs { "sfirun 0.1.0", "Lua 5.4", "OpenSSL 3", "libusb 1.0", "libp11 0.4",
                       "libarchive 3", "SQLite 3" } do
    assert(out:find(w, 1, true), "missing " .. w .. " in\n" .. out)
  end
end)

T.case("--help lists usage and exit codes", function ()
  local code, out = run("--help")
  T.eq(code, 0)
  assert(out:find("usage: sfirun", 1, true) and out:find("exit codes: 0 success, 1", 1, true))
end)

T.case("unknown option: exit 2, one line naming it", function ()
  local code, out = run("recipes/demo.lua --bogus")
  T.eq(code, 2)
  T.eq(#lines(out), 1)
  assert(out:find("unknown option '--bogus'", 1, true), out)
end)

T.case("missing recipe: exit 2", function ()
  local code, out = run("nowhere.lua")
  T.eq(code, 2)
  assert(out:find("cannot open recipe 'nowhere.lua'", 1, true), out)
  code = run("")
  T.eq(code, 2)
end)

T.case("syntax error: exit 2, file and line, traceback only with -v", function ()
  local code, out = run(R .. "syntax.lua")
  T.eq(code, 2)
  T.eq(#lines(out), 1)
  assert(out:find("syntax.lua:3:", 1, true), out)
  local _, vout = run("-v " .. R .. "syntax.lua")
  assert(vout:find("traceback", 1, true), vout)
end)

T.case("parameter of the wrong type: exit 2 before anything runs", function ()
  local code, out = run(R .. "fails.lua --set count=abc")
  T.eq(code, 2)
  T.eq(#lines(out), 1)
  assert(out:find("parameter 'count' must be an integer, got 'abc'", 1, true), out)
  assert(not out:find("first", 1, true), "a step ran: " .. out)
  code, out = run(R .. "fails.lua --set mode")
  T.eq(code, 2)
  assert(out:find("--set expects KEY=VALUE", 1, true), out)
end)

T.case("--describe prints the parameters", function ()
  local code, out = run("--describe " .. R .. "fails.lua")
  T.eq(code, 0)
  assert(out:find("fails 0", 1, true) and out:find("count", 1, true) and out:find("one of target|bug|ok", 1, true), out)
end)

T.case("flow failure: exit 1, error names step and code", function ()
  local code, out = run(R .. "fails.lua")
  T.eq(code, 1)
  assert(out:find("step rss failed: RSS complete value 0xCC000007", 1, true), out)
  assert(out:find("sfirun: .*rss: TARGET: RSS complete value 0xCC000007"), out)
  assert(not out:find("traceback", 1, true), out)
end)

T.case("a bug in a recipe: exit 1, one error line", function ()
  local code, out = run(R .. "fails.lua --set mode=bug")
  T.eq(code, 1)
  local errs = {}
  for _, l in ipairs(lines(out)) do if l:find("^sfirun:") then errs[#errs + 1] = l end end
  T.eq(#errs, 1)
  assert(errs[1]:find("attempt to index a nil value", 1, true), out)
  local _, vout = run("-v " .. R .. "fails.lua --set mode=bug")
  assert(vout:find("traceback", 1, true), vout)
end)

T.case("--json: one JSON object per line with stable keys", function ()
  local code, out = T.sh("{ " .. SFIRUN .. " --json " .. R .. "fails.lua 2>/dev/null; }")
  T.eq(code, 1)
  local events = {}
  for _, l in ipairs(lines(out)) do
    assert(l:match('^{"ts":"[%d%-T:%.]+Z","level":"%a+","event":"[%w_]+"'), "not a JSON event: " .. l)
    assert(l:sub(-1) == "}", l)
    events[#events + 1] = l:match('"event":"([%w_]+)"')
  end
  T.eq(events[1], "start")
  T.eq(events[#events], "result")
  assert(out:find('"status":"fail","step":"rss"', 1, true) or out:find('"code":"TARGET"', 1, true), out)
  code, out = run("--json " .. R .. "fails.lua --set mode=ok")
  T.eq(code, 0)
  assert(out:find('"event":"result"', 1, true) and out:find('"status":"ok"', 1, true), out)
end)

T.case("Ctrl-C: exit 1 with CANCELED, owned resources closed", function ()
  local dir = T.tmpdir()
  local marker = dir .. "/closed"
  local code, out = T.sh(string.format(
    "{ %s %sslow.lua --set marker=%s & pid=$!; sleep 1; kill -INT $pid; wait $pid; }",
    SFIRUN, R, marker))
  T.eq(code, 1)
  assert(out:find("CANCELED", 1, true), out)
  assert(out:find("step wait failed: interrupted", 1, true), out)
  T.eq(T.readfile(marker), "closed\n")
end)

T.case("--plan lists the install steps without opening the probe or the HSM", function ()
  -- neither the probe (nothing listens on port 1) nor the PKCS#11 module exists
  local code, out = run("--plan recipes/h753.lua --set image=none.sfi --probe stlink-tcp:1 " ..
    "--hsm 'pkcs11:token=x?module-path=/nonexistent/p11.so&pin-source=env:NOPE'")
  T.eq(code, 0, out)
  for _, w in ipairs { "Plan for recipe h753", "probe     : stlink-tcp:1", "HSM token pkcs11:token=x",
      "image     : none.sfi (not readable", " 9  preflight ", "10  licence ",
      "IRREVERSIBLE: consumes a licence", "start rss", "15  abort" } do
    assert(out:find(w, 1, true), "missing '" .. w .. "' in\n" .. out)
  end
  assert(not out:find("Connecting", 1, true), out)
end)

T.case("--plan --json: one object per step; edits by the recipe are marked", function ()
  local code, out = run("--plan --json recipes/examples/h753_own_reconnect.lua --set image=x.sfi " ..
    "--set licence=x.lic")
  T.eq(code, 0, out)
  local steps, replaced = 0, nil
  for line in out:gmatch("[^\n]+") do
    if line:find('"event":"plan_step"', 1, true) then
      steps = steps + 1
      if line:find('"step":"reconnect"', 1, true) then replaced = line:find('"replaced":true', 1, true) end
    end
  end
  T.eq(steps, 21)
  assert(replaced, "reconnect marked as replaced\n" .. out)
  code, out = run("--plan recipes/examples/h753_serial_label.lua --set image=x.sfi --set licence=x.lic")
  T.eq(code, 0, out)
  assert(out:find("  4  serial number", 1, true) and out:find(" label ", 1, true), out)
end)

T.case("--plan reads the image to list its parts; a bad option is exit 2 before any step", function ()
  local code, out = run("--plan recipes/h753.lua --set image=x.sfi --set licence=x.lic --set strategy=fast")
  T.eq(code, 2, out)
  assert(out:find("'strategy' must be one of", 1, true), out)
  code, out = run("--plan recipes/h753.lua --set image=x.sfi")
  T.eq(code, 0, out)
  assert(out:find("licence   : none given", 1, true), out)
  code, out = run("recipes/h753.lua --set image=x.sfi --probe stlink-tcp:1")
  T.eq(code, 2, out)
  assert(out:find("no licence source", 1, true) and not out:find("Connecting", 1, true), out)
end)

T.case("--plan of a signed bundle", function ()
  local fx = require "bundle_fixture"
  local dir = T.tmpdir()
  local key = fx.keys(dir, "oem")
  local b = fx.make(dir, "ok.lua", key)
  local code, out = run(string.format("--plan %s --trust %s --set image=x.sfi", b, key.pub))
  T.eq(code, 0, out)
  assert(out:find("Plan for recipe bundle-ok", 1, true), out)
end)

T.case("--plan shows the hash and protocol rules and where they come from", function ()
  local code, out = run("--plan recipes/h753.lua --set image=x.sfi --set licence=x.lic")
  T.eq(code, 0, out)
  assert(out:find("hash      : unsupported (device pack STM32H74x/75x default)", 1, true), out)
  assert(out:find("protocol  : 1 or 2 (device pack STM32H74x/75x default)", 1, true), out)
  code, out = run("--plan recipes/h753.lua --set image=x.sfi --set licence=x.lic " ..
    "--set hash=optional --set protocol=1")
  T.eq(code, 0, out)
  assert(out:find("hash      : optional (recipe)", 1, true), out)
  assert(out:find("protocol  : 1 (recipe)", 1, true), out)
  code, out = run("--plan recipes/h753.lua --set image=x.sfi --set licence=x.lic --set protocol=3 2>&1")
  T.eq(code, 2, out)
  assert(out:find("parameter 'protocol'", 1, true), out)
end)
