-- An install on the simulated STM32H753 with the recipe parameter push=URI: with the
-- database down the install still succeeds (a warning, the rows stay in the station's
-- journal) and a later push catches up; with it up the rows arrive after each install. Two
-- stations share one token and install the same chip: the report finds the duplicate and
-- reconciles the token's counter against the licence rows.
local T = require "sfi.test"
local pgserver = require "pgserver"
local softhsm = require "softhsm"

if not pgserver.available() then
  io.stdout:write("skip: PostgreSQL server binaries are not installed (postgresql)\n")
  os.exit(77)
end

local core = require "sfi.core"
local journal = require "sfi.journal"

local SFIRUN = assert(os.getenv("SFIRUN"), "SFIRUN not set")
local SRC = os.getenv("SFI_SOURCE_DIR") or "."

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local dir = T.tmpdir()
local tok
local fw = require("fwgen").bytes(20000, 777)

T.case("set-up: image and a token with 5 licences", function ()
  T.writefile(dir .. "/fw.bin", fw)
  T.writefile(dir .. "/key.bin", "\x2b\x7e\x15\x16\x28\xae\xd2\xa6\xab\xf7\x15\x88\x09\xcf\x4f\x3c")
  T.writefile(dir .. "/nonce.bin", "\xca\xfe\xba\xbe\xfa\xce\xdb\xad\xde\xca\xf8\x88")
  T.writefile(dir .. "/ob.csv", "FOPTSR_PRG,0x1BFEAAF0\nFPRAR_PRG_A,0x000000FF\nFPRAR_PRG_B,0x000000FF\n" ..
    "FSCAR_PRG_A,0x000000FF\nFSCAR_PRG_B,0x000000FF\nFWPSN_PRG_A,0x000000FF\nFWPSN_PRG_B,0x000000FF\n" ..
    "FBOOT7_PRG,0x1FF00800\nRESERVED,0x10000810\n")
  local code, out = T.sh(string.format("%s image build --devid 0x450 --firmware %s 0x08000000 --key %s " ..
    "--nonce %s --ob %s --hash 0 --protocol 2 -o %s", SFIRUN, q(dir .. "/fw.bin"), q(dir .. "/key.bin"),
    q(dir .. "/nonce.bin"), q(dir .. "/ob.csv"), q(dir .. "/fw.sfi")))
  assert(code == 0, out)
  tok = softhsm.token("db")
  code, out = T.sh(string.format("%s %s hsm provision --hsm %s --key %s --nonce %s --fwid DB-1 --max 5 " ..
    "--ca %s --journal %s", tok.env, SFIRUN, q(tok.uri), q(dir .. "/key.bin"), q(dir .. "/nonce.bin"),
    q(SRC .. "/vendor/sim/ca-pub.pem"), q(dir .. "/provision.sqlite")))
  assert(code == 0, out)
end)

-- one install of a fresh simulated chip with this UID at this station
local function install(station, uid, push)
  local st = dir .. "/" .. station
  os.execute("mkdir -p " .. q(st))
  local chip = string.format("sim:stm32h753?state=%s/%s.state&uid=%s", st, uid, uid)
  return T.sh(string.format("SFIRUN_STATE_DIR=%s %s %s %s/recipes/h753.lua --set image=%s --hsm %s " ..
    "--probe %s --journal %s --set station=%s --set verify=%s %s", q(st .. "/state"), tok.env, SFIRUN, SRC,
    q(dir .. "/fw.sfi"), q(tok.uri), q(chip), q(st .. "/journal.sqlite"), station, q(dir .. "/fw.bin"),
    push and ("--set push=" .. q(push)) or ""))
end

local UID_A, UID_B <const> = "0123456789ABCDEF00000001", "0123456789ABCDEF00000002"
local srv, down

T.case("install with push=URI while the database is down succeeds, with a warning", function ()
  assert(tok, "set-up failed")
  down = string.format("postgresql://sfi@127.0.0.1:%d/sfi", pgserver.free_port())
  local t0 = core.now_ms()
  local code, out = install("st1", UID_A, down)
  T.eq(code, 0, "exit code\n" .. out)
  assert(out:find("journal push failed", 1, true), "warning: " .. out)
  assert(out:find("finished successfully", 1, true), out)
  io.stdout:write(string.format("   (install with the database down: %d ms)\n", core.now_ms() - t0))
  local rows = journal.rows(dir .. "/st1/journal.sqlite")
  T.eq(#rows, 1, "journal rows")
  T.eq(rows[1].outcome, "ok", "outcome")
end)

T.case("the next push catches up", function ()
  srv = pgserver.start()
  local code, out = T.sh(string.format("%s journal push --to %s --journal %s --cm CM-1", SFIRUN, q(srv:uri()),
    q(dir .. "/st1/journal.sqlite")))
  T.eq(code, 0, out)
  assert(out:find("1 new row(s)", 1, true), out)
  T.eq(srv:value("SELECT station || ' ' || uid || ' ' || outcome FROM sfirun.licence"), "st1 " .. UID_A .. " ok")
end)

T.case("with the database up every install pushes its row", function ()
  local code, out = install("st1", UID_B, srv:uri())
  T.eq(code, 0, "exit code\n" .. out)
  assert(not out:find("journal push failed", 1, true), out)
  -- the same chip (UID A) installed again at a second station: a second licence
  code, out = install("st2", UID_A, srv:uri())
  T.eq(code, 0, "exit code\n" .. out)
  T.eq(srv:value("SELECT count(*) FROM sfirun.licence WHERE station = 'st1'"), "2")
  T.eq(srv:value("SELECT count(*) FROM sfirun.licence WHERE station = 'st2'"), "1")
  T.eq(srv:value("SELECT count(*) FROM sfirun.licence WHERE licence IS NOT NULL AND length(licence) = 136"), "3")
end)

local function csv(text)
  local lines = {}
  for l in text:gmatch("[^\r\n]+") do lines[#lines + 1] = l end
  local head, rows = {}, {}
  for h in lines[1]:gmatch("[^,]+") do head[#head + 1] = h end
  for i = 2, #lines do
    local r, k = {}, 0
    for cell in (lines[i] .. ","):gmatch("([^,]*),") do
      k = k + 1
      r[head[k]] = cell
    end
    rows[#rows + 1] = r
  end
  return rows
end

T.case("report: counts, the duplicate chip, the token reconciled", function ()
  local function rep(args)
    local code, out = T.sh(string.format("%s journal report --from %s %s", SFIRUN, q(srv:uri()), args))
    T.eq(code, 0, out)
    return out
  end
  local counts = csv(rep("--csv"))
  T.eq(#counts, 2, "one line per station (one CM, image and day)")
  local per = {}
  for _, r in ipairs(counts) do per[r.station] = r end
  T.eq(per.st1.issued, "2", "st1 issued")
  T.eq(per.st1.cm, "CM-1", "st1 CM")
  T.eq(per.st2.issued, "1", "st2 issued")
  local dup = csv(rep("--csv --table duplicates"))
  T.eq(#dup, 1, "duplicates")
  T.eq(dup[1].uid, UID_A, "duplicate UID")
  T.eq(dup[1].stations, "2", "stations")
  local toks = csv(rep("--csv --table tokens"))
  T.eq(#toks, 1, "tokens")
  T.eq({ toks[1].highest, toks[1].lowest, toks[1].decrements, toks[1].issued, toks[1].missing, toks[1].status },
    { "5", "2", "3", "3", "0", "balanced" }, "token counter vs licence rows")
  local html = dir .. "/report.html"
  local text = rep("--html " .. q(html))
  assert(text:find("2 station(s), 3 request(s): 3 licence(s) issued", 1, true), text)
  local page = assert(T.readfile(html), "HTML written")
  assert(page:find("<svg", 1, true) and page:find(UID_A, 1, true), "chart and duplicate in the page")
  assert(not page:find("<script", 1, true) and not page:find("src=", 1, true) and
    not page:find("href=", 1, true), "nothing fetched, no script")
  local json = rep("--json")
  assert(json:find('"duplicates":1', 1, true) and json:find('"status":"balanced"', 1, true), json)
end)

T.case("a database that hangs (a row lock) does not hang the install", function ()
  local db = require "sfi.journal_db"
  local held = db.connect(srv:uri())
  held:exec("BEGIN")
  held:exec("INSERT INTO sfirun.licence(station, seq, time, outcome) VALUES ('st1', 3, now(), 'held')")
  local t0 = core.now_ms()
  local code, out = install("st1", "0123456789ABCDEF00000003", srv:uri())
  local ms = core.now_ms() - t0
  T.eq(code, 0, "exit code\n" .. out)
  assert(out:find("journal push failed", 1, true) and out:find("TIMEOUT", 1, true), out)
  assert(ms < 40000, "install took " .. ms .. " ms")
  io.stdout:write(string.format("   (install with the push stuck on a lock: %d ms)\n", ms))
  held:exec("ROLLBACK")
  held:close()
  code, out = T.sh(string.format("%s journal push --to %s --journal %s", SFIRUN, q(srv:uri()),
    q(dir .. "/st1/journal.sqlite")))
  T.eq(code, 0, out)
  assert(out:find("1 new row(s), 0 resolved, 2 already there", 1, true), out)
end)

T.case("report from a database without sfirun's schema: NOT_FOUND, exit 1", function ()
  assert(os.execute(string.format("%s/createdb -h 127.0.0.1 -p %d -U sfi empty", srv.bin, srv.port)))
  local code, out = T.sh(string.format("%s journal report --from %s", SFIRUN, q(srv:uri("empty"))))
  T.eq(code, 1, out)
  assert(out:find("nothing was pushed", 1, true), out)
end)

pgserver.stop_all()
