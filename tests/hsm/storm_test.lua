-- storm_test.lua: the licence counter under concurrency. N processes each ask M licences of a
-- token provisioned with C < N*M, at once, then one more process asks until it is refused:
-- exactly C licences exist (files and journal "ok" rows), the counter ends at 0 and every
-- refusal is COUNTER. Then the same with kill -9 at random moments: licences issued <=
-- decrements <= journal rows (ok + unknown outcome), and nothing beyond C. (Stations that
-- share a token without sharing a guard: tests/unit/test_hsm_stations.c.)
--
-- Every storm runs in its own directory with its own lock directory and names its requests
-- with that directory's unique name, so the killer's pkill pattern never matches a process
-- of another test run going on at the same time.
local T = require "sfi.test"
local S = require "softhsm"

local SFIRUN = S.SFIRUN

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A provisioned token (through the CLI, as a station would) and one chip certificate.
local function setup(max, backend)
  local tok = S.token("storm")
  if backend ~= "file" then
    local conf = T.readfile(tok.conf):gsub("objectstore.backend = file", "objectstore.backend = " .. backend)
    T.writefile(tok.conf, conf)
    local code, out = T.sh(tok.env .. " softhsm2-util --init-token --free --label storm2 --so-pin 1 --pin 1234")
    if code ~= 0 then return nil, out end
  end
  local ca = tok.dir .. "/ca.pem"
  T.writefile(ca, T.readfile(S.SRC .. "/vendor/sim/ca-pub.pem"))
  local code, out = T.sh(string.format("%s %s hsm provision --hsm %s --key %s --nonce %s --fwid STORM " ..
    "--max %d --ca %s --journal %s", tok.env, SFIRUN, q(tok.uri), q(tok.dir .. "/key.bin"),
    q(tok.dir .. "/nonce.bin"), max, q(ca), q(tok.dir .. "/journal.sqlite")))
  assert(code == 0, out)
  T.writefile(tok.dir .. "/cert.bin", (S.chip("0A0B0C0D0E0F101112131415")))
  os.execute("mkdir -p " .. q(tok.dir .. "/out") .. " " .. q(tok.dir .. "/log"))
  tok.run = tok.dir:match("[^/]+$") -- unique to this run: part of every request's --uid
  return tok
end

-- One request: exit code and output go to log/<tag>.rc and log/<tag>.out; its guard is in the
-- test's own lock directory, its --uid the run's name and the tag (what the killer matches).
local function request_cmd(tok, tag)
  return string.format("%s %s -v hsm license --hsm %s --cert %s -o %s --journal %s --uid %s " ..
    ">%s 2>&1; echo $? >%s", tok.env, SFIRUN, q(tok.uri), q(tok.dir .. "/cert.bin"),
    q(tok.dir .. "/out/" .. tag .. ".lic"), q(tok.dir .. "/journal.sqlite"), tok.run .. "-" .. tag,
    q(tok.dir .. "/log/" .. tag .. ".out"), q(tok.dir .. "/log/" .. tag .. ".rc"))
end

-- N shell loops of M requests each, started together; with kill, a killer sends SIGKILL to
-- a random sfirun of this storm every few ms until the loops end.
local function storm(tok, n, m, kill)
  local script = { "set -u" }
  for i = 1, n do
    local reqs = {}
    for j = 1, m do reqs[#reqs + 1] = request_cmd(tok, string.format("p%d-%d", i, j)) end
    script[#script + 1] = "( " .. table.concat(reqs, "; ") .. " ) &"
  end
  script[#script + 1] = "loops=$(jobs -p)"
  if kill then
    -- SoftHSM2 rewrites its token.object in place (truncate, write) at every C_Login, so a
    -- process killed inside C_Login leaves an uninitialised token (docs/hsm.md). The killer
    -- therefore picks requests that have logged in ("HSM: token ... open" in their -v log)
    -- and are still running: from there on every moment is fair game, the licence guard,
    -- the journal rows, the token writes and the licence file included.
    script[#script + 1] = string.format([[
( cd %s/log
  while :; do
    sleep 0.00$(( (RANDOM %% 3) + 1 ))
    tag=$(grep -l "HSM: token" *.out 2>/dev/null | sed 's/\.out$//' | shuf | while read t; do
      [ -e "$t.rc" ] || { echo "$t"; break; }; done)
    [ -n "$tag" ] && pkill -9 -f -- "--uid %s-$tag\$" 2>/dev/null
  done ) & killer=$!]], q(tok.dir), tok.run)
  end
  script[#script + 1] = "wait $loops || true"
  if kill then script[#script + 1] = "kill $killer 2>/dev/null; wait $killer 2>/dev/null; exit 0" end
  local path = tok.dir .. "/storm.sh"
  T.writefile(path, table.concat(script, "\n") .. "\n")
  local code, out = T.sh("bash " .. q(path))
  assert(code == 0, out)
end

local function count(tok)
  local issued = 0
  local _, list = T.sh("ls " .. q(tok.dir .. "/out"))
  for name in list:gmatch("[^\n]+") do
    local b = T.readfile(tok.dir .. "/out/" .. name)
    if b and #b == 136 then issued = issued + 1 end
  end
  local journal = require "sfi.journal"
  local ok, unknown, other = 0, 0, {}
  local jp = tok.dir .. "/journal.sqlite"
  for _, r in ipairs(T.readfile(jp) and journal.rows(jp) or {}) do
    if r.outcome == "ok" then ok = ok + 1
    elseif r.outcome == "unknown" then unknown = unknown + 1
    else other[r.outcome] = (other[r.outcome] or 0) + 1 end
  end
  local code, out = T.sh(tok.env .. " " .. SFIRUN .. " hsm info --json --hsm " .. q(tok.uri))
  if code ~= 0 then
    local _, ls = T.sh("ls -la " .. q(tok.dir .. "/tokens") .. "/*; cp -r " .. q(tok.dir) .. " /tmp/broken-token")
    error(out .. ls, 0)
  end
  local counter = math.tointeger(tonumber(out:match('"counter":(%d+)')))
  return { issued = issued, ok = ok, unknown = unknown, other = other, counter = counter }
end

-- Every refused request said COUNTER (the storm may also see nothing else); killed requests
-- (exit 137) are counted apart.
local function refusals(tok)
  local n, bad, killed = 0, {}, 0
  local _, list = T.sh("ls " .. q(tok.dir .. "/log"))
  for name in list:gmatch("([^\n]+)%.rc") do
    local rc = math.tointeger(tonumber(T.readfile(tok.dir .. "/log/" .. name .. ".rc")))
    if rc == 137 then
      killed = killed + 1
    elseif rc ~= 0 then
      n = n + 1
      local out = T.readfile(tok.dir .. "/log/" .. name .. ".out") or ""
      if not out:find("COUNTER", 1, true) then bad[#bad + 1] = name .. ": " .. out end
    end
  end
  return n, bad, killed
end

local function exact(n, m, c, backend)
  local tok, why = setup(c, backend or "file")
  if not tok then T.skip("SoftHSM2 has no '" .. backend .. "' object store here: " .. why) end
  storm(tok, n, m, false)
  -- then sequentially until refused
  for k = 1, c + 2 do
    local tag = "seq-" .. k
    T.sh(request_cmd(tok, tag))
    if T.readfile(tok.dir .. "/log/" .. tag .. ".rc"):match("^0") == nil then break end
  end
  local r = count(tok)
  local refused, bad = refusals(tok)
  io.stdout:write(string.format("  storm N=%d M=%d C=%d (%s): issued %d, journal ok %d, unknown %d, " ..
    "counter %d, refused %d\n", n, m, c, backend or "file", r.issued, r.ok, r.unknown, r.counter, refused))
  T.eq(r.issued, c, "licence files issued")
  T.eq(r.ok, c, "journal ok rows")
  if r.unknown ~= 0 or r.issued ~= c then -- say why: the requests' own messages
    local _, msgs = T.sh("grep -h 'journal row\\|BUSY\\|Error\\|sfirun:' " .. q(tok.dir) ..
      "/log/*.out | grep -v COUNTER | head -5")
    T.eq({ r.issued, r.unknown }, { c, 0 }, "licences issued, unknown rows: " .. msgs)
  end
  T.eq(r.counter, 0, "counter at the end")
  T.eq(bad, {}, "every refusal is COUNTER")
  T.eq(r.other, { COUNTER = refused }, "journal rows of refusals")
end

T.case("3 processes x 6 requests, counter 5", function () exact(3, 6, 5) end)
T.case("6 processes x 8 requests, counter 40", function () exact(6, 8, 40) end)
T.case("8 processes x 5 requests, counter 17", function () exact(8, 5, 17) end)
T.case("the same storm on SoftHSM2's db object store", function () exact(4, 4, 9, "db") end)

-- Counter values that ok rows say were withheld before theirs (another request's tag, here
-- a killed one's, was on the value).
local function withheld(tok)
  local journal = require "sfi.journal"
  local n = 0
  for _, row in ipairs(journal.rows(tok.dir .. "/journal.sqlite")) do
    n = n + (row.outcome == "ok" and tonumber((row.detail or ""):match("^(%d+) counter value")) or 0)
  end
  return n
end

T.case("kill -9 storm: issued <= decremented <= journal rows, nothing beyond the counter", function ()
  local killed_total = 0
  for round = 1, 2 do
    local c = 24
    local tok = setup(c, "file")
    storm(tok, 8, 6, true)
    local r = count(tok)
    local decremented = c - r.counter
    local _, _, killed = refusals(tok)
    local lost = withheld(tok)
    killed_total = killed_total + killed
    io.stdout:write(string.format("  kill storm %d: %d killed; issued %d, decremented %d, journal ok %d + " ..
      "unknown %d, withheld %d\n", round, killed, r.issued, decremented, r.ok, r.unknown, lost))
    assert(r.issued <= decremented, "issued beyond decrements")
    assert(r.ok <= decremented, "journal ok rows beyond decrements")
    assert(decremented <= r.ok + r.unknown + lost, "decrements the journal cannot account for")
    assert(decremented <= c and r.counter >= 0, "beyond the counter")
    -- every unknown row is decided by its tag on the token: a tag is written before the counter
    -- moves, so a row without one spent nothing, and one with a tag is counted spent (even if
    -- it died before the decrement: then the next request found the value taken and withheld it)
    local code, out = T.sh(string.format("%s %s journal reconcile --hsm %s --journal %s", tok.env, SFIRUN,
      q(tok.uri), q(tok.dir .. "/journal.sqlite")))
    T.eq(code, 0, "reconcile decides every unknown row\n" .. out)
    local journal = require "sfi.journal"
    local spent, left = 0, 0
    for _, row in ipairs(journal.rows(tok.dir .. "/journal.sqlite")) do
      if row.outcome == "spent" then spent = spent + 1 end
      if row.outcome == "unknown" then left = left + 1 end
    end
    io.stdout:write(string.format("    reconciled: %d spent, %d not spent\n", spent, r.unknown - spent))
    T.eq(left, 0, "unknown rows after reconcile")
    assert(decremented <= r.ok + spent + lost,
      string.format("ok %d + spent %d (+ withheld %d) account for the %d decrements", r.ok, spent, lost,
        decremented))
  end
  assert(killed_total > 0, "the storms killed nothing")
end)
