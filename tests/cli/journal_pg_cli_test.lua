-- `sfirun journal push|report` refusals that need no database server: a password in the URI,
-- a malformed URI, missing or bad options, a missing journal. Each names what was wrong and
-- exits 2 (bad input) or 1 (the flow failed), and the password never appears in the output.
local T = require "sfi.test"
local journal = require "sfi.journal"

local SFIRUN = assert(os.getenv("SFIRUN"), "SFIRUN not set")
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local dir = T.tmpdir()
local path = dir .. "/j.sqlite"
do
  local j <close> = journal.open(path)
  j:finish(j:begin { uid = "AA", station = "s1", provider = "keyfile" }, "ok")
end

local function run(args)
  return T.sh(SFIRUN .. " journal " .. args)
end

T.case("a password in the URI is refused (URI and key=value forms)", function ()
  for _, uri in ipairs { "postgresql://u:s3cr3t@127.0.0.1:1/db", "host=127.0.0.1 port=1 password=s3cr3t" } do
    local code, out = run("push --journal " .. q(path) .. " --to " .. q(uri))
    T.eq(code, 2, uri .. "\n" .. out)
    assert(out:find("holds a password", 1, true) and out:find("PGPASSWORD", 1, true), out)
    assert(not out:find("s3cr3t", 1, true), "password echoed: " .. out)
  end
  local code, out = run("report --from " .. q("postgresql://u:s3cr3t@127.0.0.1:1/db"))
  T.eq(code, 2, out)
  assert(not out:find("s3cr3t", 1, true), out)
  -- malformed as well: libpq's reason would quote the text
  for _, uri in ipairs { "postgresql://u:s3cr3t@[::1", "host=x passwords3cr3t port" } do
    code, out = run("push --journal " .. q(path) .. " --to " .. q(uri))
    T.eq(code, 2, uri .. "\n" .. out)
    assert(out:find("not a PostgreSQL connection URI", 1, true), out)
    assert(not out:find("s3cr3t", 1, true), "password echoed: " .. out)
  end
end)

T.case("malformed URI, missing --to/--from, bad numbers: exit 2 with the reason", function ()
  local cases = {
    { "push --journal " .. q(path) .. " --to " .. q("postgresql://[::1"), "not a PostgreSQL connection URI" },
    { "push --journal " .. q(path), "give --to URI" },
    { "report", "give --from URI" },
    { "push --journal " .. q(path) .. " --to x --batch 0", "--batch must be an integer" },
    { "push --journal " .. q(path) .. " --follow --to x --interval soon", "--interval must be an integer" },
    { "report --from x --csv --table nope", "--table is counts, duplicates, unknown or tokens" },
    { "report --from x --csv --json", "--json or --csv, not both" },
    { "report --from x --html /nonexistent/dir/r.html", "directory '/nonexistent/dir' does not exist" },
  }
  for _, c in ipairs(cases) do
    local code, out = run(c[1])
    T.eq(code, 2, c[1] .. "\n" .. out)
    assert(out:find(c[2], 1, true), c[1] .. ": expected '" .. c[2] .. "' in\n" .. out)
  end
end)

T.case("no journal: NOT_FOUND, nothing created", function ()
  local missing = dir .. "/none.sqlite"
  local code, out = run("push --journal " .. q(missing) .. " --to " .. q("postgresql://u@127.0.0.1:1/db"))
  T.eq(code, 1, out)
  assert(out:find("no journal at", 1, true), out)
  T.eq(T.readfile(missing), nil, "no file created")
end)
