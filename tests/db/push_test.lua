-- journal push to a real PostgreSQL server (Debian's binaries, private port and socket dir):
-- two stations at once, the server killed mid-push and restarted, the push killed with -9,
-- a refused connection, a password in the URI, unknown outcomes resolved later, a schema
-- from an older sfirun migrated and a newer one refused. Every check counts rows exactly.
local T = require "sfi.test"
local pgserver = require "pgserver"

if not pgserver.available() then
  io.stdout:write("skip: PostgreSQL server binaries are not installed (postgresql)\n")
  os.exit(77)
end

local journal = require "sfi.journal"
local core = require "sfi.core"

local SFIRUN = assert(os.getenv("SFIRUN"), "SFIRUN not set")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- journals are written row by row with synchronous=FULL: on tmpfs when there is one
local function workdir()
  local f = io.popen("mktemp -d /dev/shm/sfi-db-XXXXXX 2>/dev/null")
  local d = f:read("l")
  f:close()
  if not d or d == "" then return T.tmpdir() end
  T.tmpdirs = T.tmpdirs or {}
  T.tmpdirs[#T.tmpdirs + 1] = d
  return d
end
local dir = workdir()

-- n licence requests through the journal API; every `unknown`-th one left unknown, the rest ok
local function make_journal(path, n, station, unknown)
  local j <close> = journal.open(path)
  local ctr = 100000
  for i = 1, n do
    local id = j:begin { uid = string.format("%s-%06d", station, i), fwid = "FW-1", station = station,
      recipe = "h753", provider = "token", token = "tok/" .. station, counter_before = ctr }
    if not (unknown and i % unknown == 0) then
      ctr = ctr - 1
      j:finish(id, "ok", ctr, nil, string.rep("\x42", 136))
    end
  end
end

local function push(uri, path, extra)
  return T.sh(string.format("%s journal push --to %s --journal %s %s", SFIRUN, q(uri), q(path), extra or ""))
end

local function count(s, station)
  return tonumber(s:value(string.format("SELECT count(*) FROM sfirun.licence WHERE station = '%s'", station)))
end

-- exact content: n rows, seq 1..n each once
local function exact(s, station, n)
  T.eq(count(s, station), n, station .. ": rows")
  T.eq(tonumber(s:value(string.format("SELECT count(DISTINCT seq) FROM sfirun.licence WHERE station = '%s'",
    station))), n, station .. ": distinct seq")
  if n > 0 then
    T.eq(s:value(string.format("SELECT min(seq) || '..' || max(seq) FROM sfirun.licence WHERE station = '%s'",
      station)), "1.." .. n, station .. ": seq range")
  end
end

local srv
T.case("server starts as an unprivileged user", function ()
  srv = pgserver.start()
  T.eq(srv:value("SELECT current_setting('port')"), tostring(srv.port), "private port")
end)

T.case("refused connection: clear error, exit 1, journal untouched", function ()
  local path = dir .. "/refused.sqlite"
  make_journal(path, 3, "r1")
  local before = T.readfile(path)
  local port = pgserver.free_port()
  local t0 = core.now_ms()
  local code, out = push(string.format("postgresql://sfi@127.0.0.1:%d/sfi", port), path)
  T.eq(code, 1, "exit code\n" .. out)
  assert(out:find("NO_DEVICE", 1, true) and out:find("Connection refused", 1, true), out)
  assert(not out:find("traceback", 1, true) and not out:find(".lua:", 1, true), "no internals: " .. out)
  assert(core.now_ms() - t0 < 10000, "refusal took too long")
  T.eq(T.readfile(path), before, "journal bytes")
  T.eq(#journal.rows(path), 3, "journal rows")
end)

T.case("a password in the URI is refused before connecting (exit 2)", function ()
  local code, out = push(srv:uri():gsub("//sfi@", "//sfi:hunter2@"), dir .. "/refused.sqlite")
  T.eq(code, 2, "exit code\n" .. out)
  assert(out:find("PGPASSWORD", 1, true), out)
  assert(not out:find("hunter2", 1, true), "the password is not echoed: " .. out)
end)

T.case("two stations push at once: exact counts, no duplicates, re-push adds nothing", function ()
  make_journal(dir .. "/a.sqlite", 1500, "st-a", 100)
  make_journal(dir .. "/b.sqlite", 1200, "st-b")
  local code, out = T.sh(string.format("%s & %s & wait",
    string.format("%s journal push --to %s --journal %s --batch 100 > %s 2>&1; echo $? >> %s", SFIRUN,
      q(srv:uri()), q(dir .. "/a.sqlite"), q(dir .. "/a.out"), q(dir .. "/a.out")),
    string.format("%s journal push --to %s --journal %s --batch 100 > %s 2>&1; echo $? >> %s", SFIRUN,
      q(srv:uri()), q(dir .. "/b.sqlite"), q(dir .. "/b.out"), q(dir .. "/b.out"))))
  T.eq(code, 0, out)
  local a, b = T.readfile(dir .. "/a.out"), T.readfile(dir .. "/b.out")
  assert(a:match("\n0\n$") and a:find("1500 new row", 1, true), a)
  assert(b:match("\n0\n$") and b:find("1200 new row", 1, true), b)
  exact(srv, "st-a", 1500)
  exact(srv, "st-b", 1200)
  T.eq(tonumber(srv:value("SELECT count(*) FROM sfirun.licence WHERE outcome = 'unknown'")), 15, "unknown rows")
  T.eq(srv:value("SELECT version FROM sfirun.schema_version ORDER BY version"), "1", "one migration run per version")
  T.eq(tonumber(srv:value("SELECT count(*) FROM sfirun.schema_version")), 2, "schema versions")
  code, out = push(srv:uri(), dir .. "/a.sqlite")
  T.eq(code, 0, out)
  assert(out:find("0 new row(s), 0 resolved, 1500 already there", 1, true), out)
  exact(srv, "st-a", 1500)
end)

T.case("unknown outcomes resolved at the station are updated, once", function ()
  local path = dir .. "/a.sqlite"
  local j <close> = journal.open(path)
  for _, r in ipairs(j:rows()) do
    if r.outcome == "unknown" then j:resolve(r.id, r.id % 200 == 0 and "spent" or "not-spent", "test") end
  end
  j:close()
  local code, out = push(srv:uri(), path)
  T.eq(code, 0, out)
  assert(out:find("0 new row(s), 15 resolved", 1, true), out)
  exact(srv, "st-a", 1500)
  T.eq(tonumber(srv:value("SELECT count(*) FROM sfirun.licence WHERE outcome = 'unknown'")), 0, "unknown left")
  T.eq(tonumber(srv:value("SELECT count(*) FROM sfirun.licence WHERE revision = 2")), 15, "rows changed once")
  T.eq(tonumber(srv:value("SELECT count(*) FROM sfirun.licence WHERE outcome = 'spent'")), 7, "spent rows")
  code, out = push(srv:uri(), path)
  assert(code == 0 and out:find("0 resolved", 1, true), out)
end)

-- runs a push in the background; returns a function that waits for it -> exit code, output
local function background(uri, path, tag)
  local outf, pidf = dir .. "/" .. tag .. ".out", dir .. "/" .. tag .. ".pid"
  assert(os.execute(string.format("( %s journal push --to %s --journal %s --batch 50 > %s 2>&1; " ..
    "echo \"exit=$?\" >> %s ) & echo $! > %s", SFIRUN, q(uri), q(path), q(outf), q(outf), q(pidf))))
  return function ()
    for _ = 1, 600 do
      local o = T.readfile(outf) or ""
      local rc = o:match("exit=(%d+)")
      if rc then return tonumber(rc), o end
      core.sleep_ms(100)
    end
    error("push did not finish")
  end
end

-- Holds row `seq` of the station in an open transaction (the test's own connection), so the
-- push's batch holding that row waits on it after the batches before it have committed: the
-- fault then lands at a known point. Returns the connection.
local function block_at(station, seq)
  local db = require "sfi.journal_db"
  local c = db.connect(srv:uri())
  db.migrate(c)
  c:exec("INSERT INTO sfirun.station(station) VALUES ($1) ON CONFLICT DO NOTHING", station)
  c:exec("BEGIN")
  c:exec("INSERT INTO sfirun.licence(station, seq, time, outcome) VALUES ($1, $2, now(), 'held')", station, seq)
  return c
end

-- polls until `n` rows of the station are committed and the push waits on the held row
local function wait_blocked(station, n)
  for _ = 1, 600 do
    local code, out = srv:psql(string.format("SELECT (SELECT count(*) FROM sfirun.licence WHERE station = '%s')" ..
      " || ' ' || (SELECT count(*) FROM pg_locks WHERE NOT granted)", station))
    local got, waiting = (code == 0 and out or ""):match("(%d+) (%d+)")
    if got and tonumber(got) == n and tonumber(waiting) > 0 then return end
    core.sleep_ms(50)
  end
  error("the push never reached the held row")
end

local figures = {}

T.case("server killed mid-push (pg_ctl stop -m immediate), restarted, push re-run", function ()
  local path = dir .. "/c.sqlite"
  make_journal(path, 3000, "st-c", 250)
  local held = block_at("st-c", 1001)
  local wait = background(srv:uri(), path, "c")
  wait_blocked("st-c", 1000)
  local t0 = core.now_ms()
  srv:stop("immediate")
  local code, out = wait()
  local ms = core.now_ms() - t0
  T.eq(code, 1, "the cut push fails\n" .. out)
  assert(out:find("NO_DEVICE", 1, true), "error names the lost connection: " .. out)
  held:close() -- its server is gone, and with it the held row
  srv:start()
  exact(srv, "st-c", 1000) -- 20 whole batches of 50, nothing of the 21st
  t0 = core.now_ms()
  code, out = push(srv:uri(), path)
  T.eq(code, 0, out)
  assert(out:find("2000 new row(s), 0 resolved, 1000 already there", 1, true), out)
  exact(srv, "st-c", 3000)
  figures[#figures + 1] = string.format("server crash: push failed %d ms after it, re-push of 2000 rows %d ms",
    ms, core.now_ms() - t0)
  T.eq(tonumber(srv:value("SELECT count(*) FROM sfirun.licence WHERE station = 'st-c' AND outcome = 'unknown'")),
    12, "unknown rows kept as such")
end)

T.case("push killed with -9 mid-push, re-run", function ()
  local path = dir .. "/d.sqlite"
  make_journal(path, 3000, "st-d")
  local held = block_at("st-d", 1501)
  local wait = background(srv:uri(), path, "d")
  wait_blocked("st-d", 1500)
  -- the sfirun process itself (the shell around it has the same words after "sh -c")
  local _, pids = T.sh("pgrep -f -- " .. q("^[^ ]*sfirun journal push --to .* --journal " .. path))
  local target = pids:match("^(%d+)\n$")
  assert(target, "one push process expected: " .. pids)
  assert(os.execute("kill -9 " .. target))
  local code = wait()
  T.eq(code, 137, "killed push exit code")
  held:exec("ROLLBACK")
  held:close()
  exact(srv, "st-d", 1500)
  local out
  local t0 = core.now_ms()
  code, out = push(srv:uri(), path)
  T.eq(code, 0, out)
  assert(out:find("1500 new row(s), 0 resolved, 1500 already there", 1, true), out)
  exact(srv, "st-d", 3000)
  figures[#figures + 1] = string.format("push killed: re-push of 1500 rows %d ms", core.now_ms() - t0)
  exact(srv, "st-a", 1500) -- the other stations are untouched
  exact(srv, "st-c", 3000)
  io.stdout:write("   (", table.concat(figures, "; "), ")\n")
end)

T.case("another journal under a pushed station name is refused", function ()
  local path = dir .. "/other.sqlite"
  make_journal(path, 10, "st-b")
  local code, out = push(srv:uri(), path)
  T.eq(code, 2, out) -- bad input: the station needs its own name
  assert(out:find("another journal pushes under the same station name", 1, true), out)
  exact(srv, "st-b", 1200)
  code, out = push(srv:uri(), path, "--station st-b2")
  T.eq(code, 0, out)
  exact(srv, "st-b2", 10)
end)

T.case("a schema from an older sfirun (version 1) is migrated, its rows kept", function ()
  local db = require "sfi.journal_db"
  assert(os.execute(string.format("%s/createdb -h 127.0.0.1 -p %d -U sfi old", srv.bin, srv.port)))
  local uri = srv:uri("old")
  local path = dir .. "/e.sqlite"
  make_journal(path, 40, "st-e", 10)
  do -- what version 1 wrote: its schema and the journal's first 25 rows
    local c <close> = db.connect(uri)
    T.eq(select(2, db.migrate(c, 1)), 1, "version 1 made")
    c:exec("INSERT INTO sfirun.station(station) VALUES ('st-e')")
    for _, r in ipairs(journal.rows(path)) do
      if r.id <= 25 then
        c:exec("INSERT INTO sfirun.licence(station, seq, time, uid, fwid, provider, token, counter_before," ..
          " counter_after, outcome) VALUES ('st-e', $1, $2, $3, $4, $5, $6, $7, $8, $9)", r.id, r.time, r.uid,
          r.fwid, r.provider, r.token, r.counter_before, r.counter_after, r.outcome)
      end
    end
  end
  local code, out = push(uri, path)
  T.eq(code, 0, out)
  assert(out:find("version 1 -> 2", 1, true), out)
  assert(out:find("15 new row(s), 0 resolved, 25 already there", 1, true), out)
  local c <close> = db.connect(uri)
  T.eq(db.version(c), 2, "schema version")
  T.eq(#c:exec("SELECT 1 FROM sfirun.licence WHERE station = 'st-e'"), 40, "rows")
  T.eq(#c:exec("SELECT 1 FROM sfirun.licence WHERE station = 'st-e' AND revision = 1"), 40, "old rows unchanged")
  T.eq(#c:exec("SELECT 1 FROM sfirun.licence WHERE seq <= 25 AND recorded_station IS NULL"), 25,
    "old rows keep what version 1 stored")
end)

T.case("a schema newer than this sfirun is refused", function ()
  srv:value("INSERT INTO sfirun.schema_version(version) VALUES (99) RETURNING version")
  local code, out = push(srv:uri(), dir .. "/a.sqlite")
  T.eq(code, 1, out)
  assert(out:find("UNSUPPORTED", 1, true) and out:find("upgrade sfirun", 1, true), out)
  srv:value("DELETE FROM sfirun.schema_version WHERE version = 99 RETURNING version")
end)

T.case("--follow keeps pushing through a database outage", function ()
  local path = dir .. "/f.sqlite"
  make_journal(path, 20, "st-f")
  srv:stop("fast")
  local outf = dir .. "/f.out"
  assert(os.execute(string.format("%s journal push --follow --interval 1 --to %s --journal %s > %s 2>&1 &",
    SFIRUN, q(srv:uri()), q(path), q(outf))))
  local function follower()
    local _, pids = T.sh("pgrep -f -- " .. q("^[^ ]*sfirun journal push --follow .* --journal " .. path))
    return pids:match("^(%d+)\n$")
  end
  core.sleep_ms(2500)
  assert(follower(), "the follower keeps running while the database is down: " .. (T.readfile(outf) or ""))
  assert((T.readfile(outf) or ""):find("journal push failed, next try in 1 s", 1, true), T.readfile(outf))
  srv:start()
  local function rows_soon(n)
    for _ = 1, 100 do
      local code, out = srv:psql("SELECT count(*) FROM sfirun.licence WHERE station = 'st-f'")
      if code == 0 and tonumber(out) == n then return end
      core.sleep_ms(100)
    end
    error("station st-f did not reach " .. n .. " rows: " .. (T.readfile(outf) or ""))
  end
  rows_soon(20)
  make_journal(path, 5, "st-f") -- five more requests at the station
  rows_soon(25)
  exact(srv, "st-f", 25)
  local pid = assert(follower(), "follower still running")
  assert(os.execute("kill -INT " .. pid))
  for _ = 1, 50 do
    if not follower() then break end
    core.sleep_ms(100)
  end
  assert(not follower(), "Ctrl-C stops the follower")
end)

pgserver.stop_all()
