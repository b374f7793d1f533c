-- log_order_test.lua: a user compares sfirun's install log with ST's line by line. The key
-- lines of a simulated H753 install come in the order of the two ST runs in the public H753
-- report (tests/data/seeds/forum-h753-sfi-hash.txt: CubeProgrammer 2.20, then 2.19): the RSS
-- complete value before "Reconnecting...", getProductID before the certificate, "Starting
-- Firmware Install operation" before the security activation, "Checking security state after
-- SFI" after the last part. Where sfirun prints more (docs/sfi-model.md, "The log"), the
-- difference is exactly the documented one.
local T = require "sfi.test"

local SFIRUN <const> = assert(os.getenv("SFIRUN"))
local SRC <const> = os.getenv("SFI_SOURCE_DIR") or "."
local SEED <const> = SRC .. "/tests/data/seeds/forum-h753-sfi-hash.txt"
local dir = T.tmpdir()

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The key lines, as ST words them ("Cheking" is ST's spelling in 2.20, "Checking" sfirun's).
local KEYS <const> = {
  { "UPLOADING OPTION BYTES DATA", "option bytes read" },
  { "SFI parsing file started", "parse" },
  { "getProductID command execution finished", "product id" },
  { "Requesting Chip Certificate from device", "certificate" },
  { "requesting license for the current STM32 device", "licence" },
  { "Starting Firmware Install operation", "start install" },
  { "Activating security%.%.%.", "activate security" },
  { "Setting write mode to SFI", "write mode" },
  { "Starting SFI part (%d+)", "part" },
  { "all areas processed", "all areas" },
  { "RSS process started", "rss started" },
  { "RSS command execution OK", "rss ok" },
  { "RSS complete Value", "rss value" },
  { "Chec?king security state after SFI", "checking security" },
  { "Reconnecting%.%.%.", "reconnecting" },
  { "Reconnected !", "reconnected" },
  { "SECURITY State", "security state" },
  { "Could not verify security state after last chunk programming", "could not verify" },
  { "SFI Process Finished", "finished" },
}

-- The key lines of `text` from the last line holding `from` (a plain string) on.
local function keys(text, from)
  local out, at, i = {}, nil, 1
  while from do
    local j = text:find(from, i, true)
    if not j then break end
    at, i = j, j + 1
  end
  for line in text:sub(at or 1):gmatch("[^\n]+") do
    local msg = line:gsub("^%d%d:%d%d:%d%d : ", ""):gsub("^Error: ", ""):gsub("^Warning: ", "")
    for _, k in ipairs(KEYS) do
      local a, _, n = msg:find("^" .. k[1])
      if a then
        out[#out + 1] = n and (k[2] .. " " .. n) or k[2]
        break
      end
    end
  end
  return out
end

local function upto(list, last)
  local out = {}
  for _, v in ipairs(list) do
    out[#out + 1] = v
    if v == last then break end
  end
  return out
end

require("fwgen").dev_image(dir, 150000, 11) -- fw.sfi, key.bin, nonce.bin for every case

local function install(uri, extra)
  os.remove(dir .. "/chip.state")
  local code, out = T.sh(string.format("SFIRUN_STATE_DIR=%s %s %s/recipes/h753.lua --set image=%s " ..
    "--set key=%s --set nonce=%s --probe %s %s 2>&1", q(dir .. "/state"), SFIRUN, SRC,
    q(dir .. "/fw.sfi"), q(dir .. "/key.bin"), q(dir .. "/nonce.bin"),
    q(uri .. "&state=" .. dir .. "/chip.state"), extra or ""))
  T.eq(code, 0, "install exit code\n" .. out)
  return out
end

local seed = assert(io.open(SEED)):read("a")

T.case("up to the first reconnect: ST's order (CubeProgrammer 2.20, H753)", function ()
  -- the 2.20 run is the timestamped one; it stops at part 1's security check
  local st = upto(keys(seed, "15:25:42"), "security state")
  T.eq(st[#st], "security state") -- the seed excerpt is what this test thinks it is
  local out = install("sim:stm32h753?bl=0x90")
  T.eq(upto(keys(out), "security state"), st, out)
end)

T.case("two parts to the end: ST's order (CubeProgrammer 2.19), with sfirun's documented extras",
function ()
  local st = keys(seed, "Succeed to get License for Firmware from HSM")
  T.eq(st[#st], "finished")
  local got = keys(install("sim:stm32h753?bl=0x90"), "Succeed to get License")
  -- after the last part sfirun also prints the RSS result it read and, the chip answering
  -- again, the reconnect and the security check ST could not do in that run
  local trimmed, last = {}, false
  for _, v in ipairs(got) do
    last = last or v == "all areas"
    local extra = last and (v == "rss value" or v == "reconnected" or v == "security state")
    if not extra then trimmed[#trimmed + 1] = v end
  end
  T.eq(trimmed, st)
  local i, want = 1, { "all areas", "rss started", "rss ok", "rss value", "checking security",
                       "reconnecting", "reconnected", "security state", "finished" }
  while got[i] ~= "all areas" do i = i + 1 end
  T.eq(table.move(got, i, #got, 1, {}), want)
end)

T.case("the debug port silent after the RSS run: sfirun says so, reads the value after the reconnect",
function ()
  local out = install("sim:stm32h753?bl=0x90&unreachable_after_rss=2")
  local pos = {}
  for _, w in ipairs { "RSS process started...", "The debug port does not answer after the RSS " ..
      "run: the RSS complete value is read after reconnecting", "Reconnecting...", "Reconnected !",
      "RSS command execution OK", "RSS complete Value = 0x80", "SECURITY State Success" } do
    local at = out:find(w, pos[#pos] or 1, true)
    assert(at, "missing '" .. w .. "' (in this order) in\n" .. out)
    pos[#pos + 1] = at
  end
end)

T.case("the chip silent after the last RSS result: ST's 'Could not verify' warning, then Finished",
function ()
  -- ST's run on the H7B3 dev kit (forum-h7ab-sfi-license.txt): after the last part the
  -- security state could not be checked, and the tool reports the install finished
  local st = keys(assert(io.open(SRC .. "/tests/data/seeds/forum-h7ab-sfi-license.txt")):read("a"),
    "all areas processed")
  T.eq(st, { "all areas", "rss started", "rss ok", "could not verify", "finished" })
  local simserver = require "simserver"
  local function run(extra)
    local srv = simserver.start { dir = dir, set = { state = dir .. "/srv.state" } }
    local code, out = T.sh(string.format("SIM_SERVER_PID=%d SFIRUN_STATE_DIR=%s %s " ..
      "%s/tests/data/recipes/unplug_before_last_reconnect.lua --set image=%s --set key=%s " ..
      "--set nonce=%s --probe stlink-tcp:%d --set tries=2 %s 2>&1", srv.pid, q(dir .. "/state2"),
      SFIRUN, SRC, q(dir .. "/fw.sfi"), q(dir .. "/key.bin"), q(dir .. "/nonce.bin"), srv.port,
      extra or ""))
    srv:stop()
    os.remove(dir .. "/srv.state")
    return code, out
  end
  local code, out = run()
  T.eq(code, 0, out)
  -- ST's lines in ST's order; between them sfirun's own: the value it read, the reconnect
  -- it tried (and which failed)
  local got, i = keys(out, "all areas processed"), 1
  for _, want in ipairs(st) do
    while got[i] and got[i] ~= want do i = i + 1 end
    assert(got[i], "'" .. want .. "' missing or out of ST's order in\n" .. out)
  end
  T.eq(got, { "all areas", "rss started", "rss ok", "rss value", "checking security",
              "reconnecting", "could not verify", "finished" })
  assert(out:find("RSS complete Value = 0x0", 1, true), out)
  assert(out:find("the option bytes cannot be shown", 1, true), out)
  -- a verify that was asked for cannot be done: the run fails and says why
  code, out = run("--set verify=" .. q(dir .. "/fw.bin"))
  T.eq(code, 1, out)
  assert(out:find("flash not compared with", 1, true) and out:find("the RSS reported the install done", 1, true), out)
end)

T.summary()
