-- gang_test.lua: one recipe on four simulated probes at once with one SoftHSM2 token and one
-- journal: every slot succeeds and the counter falls by exactly four; a slot with a fault
-- fails alone; a slot whose chip lost power after its licence reuses it on the next run;
-- Ctrl-C mid-gang leaves the counter, the licences and the journal in agreement.
local T = require "sfi.test"
local S = require "softhsm"
local journal = require "sfi.journal"

local SFIRUN <const> = S.SFIRUN
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function setup(max)
  local tok = S.token()
  local d = tok.dir
  local code, out = T.sh(tok.env .. " SFI_HSM_PIN=1234 " .. SFIRUN .. " hsm provision --hsm " ..
    q(tok.uri) .. " --key " .. d .. "/key.bin --nonce " .. d .. "/nonce.bin --fwid GANG-1 --max " ..
    max .. " --ca " .. S.SRC .. "/vendor/sim/ca-pub.pem --journal " .. d .. "/journal.sqlite")
  assert(code == 0, out)
  local fw = require("fwgen").bytes(60000, 3)
  T.writefile(d .. "/fw.bin", fw)
  code, out = T.sh(string.format("%s image build --devid 0x450 --firmware %s 0x08000000 --key %s " ..
    "--nonce %s --ramsize 0x1E000 --hash 0 -o %s", SFIRUN, q(d .. "/fw.bin"), q(d .. "/key.bin"),
    q(d .. "/nonce.bin"), q(d .. "/fw.sfi")))
  assert(code == 0, out)
  return tok
end

local function probe(tok, n, extra)
  return string.format("sim:stm32h753?uid=%024X&state=%s/chip%d.state%s", n, tok.dir, n,
    extra or "")
end

-- Runs the gang; returns exit code and output.
local function gang(tok, probes, extra)
  local args = {}
  for _, p in ipairs(probes) do args[#args + 1] = "--probe " .. q(p) end
  return T.sh(string.format("%s SFIRUN_STATE_DIR=%s %s %s/recipes/h753.lua --set image=%s " ..
    "--hsm %s --journal %s %s %s 2>&1", tok.env, q(tok.dir .. "/st"), SFIRUN, S.SRC,
    q(tok.dir .. "/fw.sfi"), q(tok.uri), q(tok.dir .. "/journal.sqlite"),
    table.concat(args, " "), extra or ""))
end

local function counter(tok)
  local code, out = T.sh(tok.env .. " " .. SFIRUN .. " hsm info --json --hsm " .. q(tok.uri))
  assert(code == 0, out)
  return math.tointeger(tonumber(out:match('"counter":(%d+)')))
end

local function rows(tok)
  local ok, uids, other, withheld, unknown = 0, {}, 0, 0, 0
  local okr, list = pcall(journal.rows, tok.dir .. "/journal.sqlite")
  if not okr then list = {} end -- no journal yet: no licence asked for
  for _, r in ipairs(list) do
    -- a value another request's tag also claimed is withheld: spent, journaled in the detail
    withheld = withheld + (math.tointeger(tonumber(tostring(r.detail or ""):match(
      "(%d+) counter value%(s%) also spent"))) or 0)
    if r.outcome == "unknown" then unknown = unknown + 1 end
    if r.outcome == "ok" then ok = ok + 1; uids[r.uid] = (uids[r.uid] or 0) + 1
    else other = other + 1 end
  end
  local n = 0
  for _ in pairs(uids) do n = n + 1 end
  return ok, n, other, withheld, unknown
end

T.case("four slots, one token: all succeed, counter falls by exactly four", function ()
  local tok = setup(10)
  local code, out = gang(tok, { probe(tok, 1), probe(tok, 2), probe(tok, 3), probe(tok, 4) })
  T.eq(code, 0, out)
  assert(out:find("4 of 4 slots succeeded", 1, true), out)
  for i = 1, 4 do
    assert(out:find(string.format("slot%d%%s+sim:stm32h753%%S*%%s+%024X%%s+ok", i, i)), out)
  end
  T.eq(counter(tok), 6)
  local ok, distinct, other = rows(tok)
  T.eq(ok, 4); T.eq(distinct, 4); T.eq(other, 0)
end)

T.case("a slot that fails fails alone; a rerun on its chip reuses its licence", function ()
  local tok = setup(10)
  -- slot 2 loses power during the RSS run: its licence is spent, the install unfinished
  local code, out = gang(tok, { probe(tok, 1), probe(tok, 2, "&power_loss_at=rss"),
    probe(tok, 3, "&unreachable_after_rss=9") })
  T.eq(code, 1, out)
  assert(out:find("1 of 3 slots succeeded", 1, true), out)
  assert(out:find("slot2%s+%S+%s+%S+%s+FAIL"), out)
  assert(out:find("slot3%s+%S+%s+%S+%s+FAIL%s+part 1 NO_DEVICE"), out)
  local c1 = counter(tok)
  T.eq(c1, 7, "three licences spent")
  -- slot 2's chip again (power back): the licence issued for it is reused, none spent
  code, out = gang(tok, { probe(tok, 2), probe(tok, 4) })
  T.eq(code, 0, out)
  T.eq(counter(tok), c1 - 1, "only the new chip took a licence")
end)

T.case("Ctrl-C mid-gang: every slot stops safely, counter and journal agree", function ()
  local tok = setup(10)
  local probes = {}
  for i = 1, 4 do probes[i] = probe(tok, i, "&timing=datasheet&time_scale=0.1") end
  local args = {}
  for _, p in ipairs(probes) do args[#args + 1] = "--probe " .. q(p) end
  local log = tok.dir .. "/gang.log"
  local cmd = string.format("%s SFIRUN_STATE_DIR=%s %s %s/recipes/h753.lua --set image=%s " ..
    "--hsm %s --journal %s %s >%s 2>&1 & echo $!", tok.env, q(tok.dir .. "/st"), SFIRUN, S.SRC,
    q(tok.dir .. "/fw.sfi"), q(tok.uri), q(tok.dir .. "/journal.sqlite"), table.concat(args, " "),
    q(log))
  local f = io.popen(cmd)
  local pid = f:read("l")
  f:close()
  -- wait until at least one slot has its licence (the journal has a row), then interrupt
  for _ = 1, 200 do
    local okr, _, other = rows(tok)
    if okr + other > 0 then break end
    os.execute("sleep 0.05")
  end
  os.execute("kill -INT " .. pid)
  for _ = 1, 600 do
    if os.execute("kill -0 " .. pid .. " 2>/dev/null") ~= true then break end
    os.execute("sleep 0.05")
  end
  assert(os.execute("kill -0 " .. pid .. " 2>/dev/null") ~= true, "gang did not stop")
  local out = T.readfile(log) or ""
  assert(out:find("interrupted", 1, true), "no interruption seen:\n" .. out)
  -- no sfirun of this gang left running
  -- ("[f]w" so that the shell running pgrep does not match itself)
  local _, ps = T.sh("pgrep -f " .. q(tok.dir .. "/[f]w.sfi") .. " || true")
  T.eq(ps:match("%d+"), nil, "slot processes left: " .. ps)
  -- every licence the counter gave is in the journal (ok or unknown outcome), none missing
  -- every value the counter gave is in the journal: in an ok row (with the values withheld
  -- before it), or under a row left "unknown outcome" (an interrupted request spends at most
  -- the 5 values it may try; `journal reconcile` decides it from the token's tags)
  local okr, _, _, withheld, unknown = rows(tok)
  local spent = 10 - counter(tok)
  local detail = string.format("spent %d, ok %d, withheld %d, unknown %d\n%s", spent, okr,
    withheld, unknown, out)
  assert(spent >= okr + withheld, detail)
  assert(spent <= okr + withheld + 5 * unknown, detail)
  if unknown == 0 then T.eq(spent, okr + withheld, detail) end
  if os.getenv("SFI_TEST_SHOW") then io.stderr:write(out) end
end)
