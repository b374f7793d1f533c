-- gang_cli_test.lua: `sfirun RECIPE --probe A --probe B ...` and `--gang FILE` without an HSM
-- (development key and nonce): JSON events carry their slot, plain output is prefixed with
-- it, the summary and exit codes, and the usage errors of a gang.
local T = require "sfi.test"

local SFIRUN <const> = assert(os.getenv("SFIRUN"))
local SRC <const> = os.getenv("SFI_SOURCE_DIR") or "."
local dir = T.tmpdir()

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

require("fwgen").dev_image(dir, 40000, 5)

local function run(args)
  return T.sh(string.format("SFIRUN_STATE_DIR=%s %s %s/recipes/h753.lua --set image=%s " ..
    "--set key=%s --set nonce=%s --journal %s %s 2>&1", q(dir .. "/st"), SFIRUN, SRC,
    q(dir .. "/fw.sfi"), q(dir .. "/key.bin"), q(dir .. "/nonce.bin"), q(dir .. "/j.sqlite"), args))
end

local function sim(n, extra)
  return q(string.format("sim:stm32h753?uid=%024X%s", n, extra or ""))
end

T.case("--json: every event carries its slot; a slot_result per slot; exit 1 on one failure", function ()
  local code, out = run("--json --probe " .. sim(1) .. " --probe " .. sim(2, "&rss=off"))
  T.eq(code, 1, out)
  local gang = require "sfi.gang"
  local seen, results = {}, {}
  for line in out:gmatch("[^\n]+") do
    local e = gang.decode(line)
    if type(e) == "table" and e.event then
      if e.slot then seen[e.slot] = true end
      if e.event == "slot_result" then results[e.slot] = e end
    end
  end
  assert(seen.slot1 and seen.slot2, out)
  T.eq(results.slot1.status, "ok")
  T.eq(results.slot1.uid, string.format("%024X", 1))
  T.eq(results.slot2.status, "fail")
  assert(out:find('"event":"gang_result"', 1, true), out)
end)

T.case("plain output: lines prefixed by slot, a summary table", function ()
  local code, out = run("--probe " .. sim(3) .. " --probe " .. sim(4))
  T.eq(code, 0, out)
  assert(out:find("[slot1] Recipe h753 finished successfully", 1, true), out)
  assert(out:find("[slot2] Recipe h753 finished successfully", 1, true), out)
  assert(out:find("2 of 2 slots succeeded", 1, true), out)
end)

T.case("--gang FILE: named slots, comments; errors name the line", function ()
  T.writefile(dir .. "/gang.txt", "# line A\nleft  sim:stm32h753?uid=0000000000000000000000A1\n\n" ..
    "sim:stm32h753?uid=0000000000000000000000A2   # unnamed\n")
  local code, out = run("--gang " .. q(dir .. "/gang.txt"))
  T.eq(code, 0, out)
  assert(out:find("[left] Recipe h753 finished", 1, true), out)
  assert(out:find("[slot2] Recipe h753 finished", 1, true), out)
  T.writefile(dir .. "/bad.txt", "a sim:stm32h753 extra\n")
  code, out = run("--gang " .. q(dir .. "/bad.txt"))
  T.eq(code, 2, out)
  assert(out:find("gang file line 1", 1, true), out)
end)

T.case("usage errors of a gang: exit 2, nothing run", function ()
  local code, out = run("--probe sim --probe sim")
  T.eq(code, 2, out)
  assert(out:find("probe 'sim' used twice", 1, true), out)
  code, out = run("--plan --probe sim:stm32h753 --probe sim:stm32h757")
  T.eq(code, 2, out)
  assert(out:find("not a gang", 1, true), out)
  code, out = T.sh(SFIRUN .. " " .. q(dir .. "/nope.lua") .. " --probe sim --probe sim:x 2>&1")
  T.eq(code, 2, out)
  assert(select(2, out:gsub("cannot open recipe", "")) == 1, "one error, not one per slot\n" .. out)
end)

T.case("JSON reader: sfirun's own event lines", function ()
  local gang = require "sfi.gang"
  local e = gang.decode('{"a":"x\\"y\\u00e9","n":-12,"f":1.5,"t":true,"z":null,"l":[1,"2"]}')
  T.eq(e.a, 'x"y\u{e9}'); T.eq(e.n, -12); T.eq(e.f, 1.5); T.eq(e.t, true); T.eq(e.l[2], "2")
  T.eq(gang.decode("sfirun: not json"), nil)
  T.eq(gang.decode('{"a":'), nil)
end)

T.case("--continuous: each new chip in a slot's socket starts its next install", function ()
  local gang = require "sfi.gang"
  local d = dir .. "/line"
  os.execute("mkdir -p " .. q(d))
  local uids = { a = 0xA00, b = 0xB00 }
  local function insert(slot)   -- a fresh chip: a new UID, nothing in its flash
    os.remove(d .. "/" .. slot .. ".state")
    T.writefile(d .. "/" .. slot .. ".uid", string.format("%024X\n", uids[slot]))
  end
  insert("a"); insert("b")
  local function sock(slot)
    return q(string.format("sim:stm32h753?uid_file=%s/%s.uid&state=%s/%s.state", d, slot, d, slot))
  end
  local logf = d .. "/gang.jsonl"
  local f = io.popen(string.format("(SFIRUN_STATE_DIR=%s %s --json %s/recipes/h753.lua --set " ..
    "image=%s --set key=%s --set nonce=%s --journal %s --continuous --count 4 --probe %s " ..
    "--probe %s >%s 2>&1; echo $? >%s.rc) &", q(dir .. "/st"), SFIRUN, SRC, q(dir .. "/fw.sfi"),
    q(dir .. "/key.bin"), q(dir .. "/nonce.bin"), q(dir .. "/j.sqlite"), sock("a"), sock("b"),
    q(logf), q(logf)))
  f:close()
  -- the line: when a slot's device is done, the operator puts the next chip in
  local seen, results = 0, {}
  for _ = 1, 600 do
    local text = T.readfile(logf) or ""
    local n = 0
    for line in text:gmatch("[^\n]+") do
      local e = gang.decode(line)
      if type(e) == "table" and e.event == "device_result" then
        n = n + 1
        if n > seen then
          seen = n
          results[#results + 1] = e
          local slot = e.slot == "slot1" and "a" or "b"
          uids[slot] = uids[slot] + 1
          insert(slot)
        end
      end
    end
    if T.readfile(logf .. ".rc") then break end
    os.execute("sleep 0.1")
  end
  local rc = T.readfile(logf .. ".rc")
  assert(rc, "the gang did not stop:\n" .. (T.readfile(logf) or ""))
  T.eq(math.tointeger(tonumber(rc)), 0, T.readfile(logf))
  T.eq(#results, 4, T.readfile(logf))
  local distinct = {}
  for _, e in ipairs(results) do
    T.eq(e.status, "ok")
    distinct[e.uid] = true
  end
  local n = 0
  for _ in pairs(distinct) do n = n + 1 end
  T.eq(n, 4, "four different chips")
  assert((T.readfile(logf) or ""):find('"stopped":"4 devices done"', 1, true), T.readfile(logf))
end)
