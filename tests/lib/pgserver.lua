--- pgserver: a private PostgreSQL server for tests, from Debian's binaries
-- (/usr/lib/postgresql/*/bin): initdb in a temp directory, a private port and socket
-- directory, no TCP listener beyond 127.0.0.1. As root (CI) the server runs as `nobody`
-- (PostgreSQL refuses root) with the directory handed to it. M.start skips the case
-- (exit 77 for the file) when the binaries are missing; M.stop_all runs at exit.
local T = require "sfi.test"

local M = {}

local servers = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- M.bindir() -> path | nil: the newest /usr/lib/postgresql/N/bin with initdb and pg_ctl.
function M.bindir()
  local f = io.popen("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1")
  local d = f:read("l")
  f:close()
  if d and d ~= "" and io.open(d .. "/initdb", "r") and io.open(d .. "/pg_ctl", "r") then return d end
  return nil
end

--- M.available() -> boolean
function M.available() return M.bindir() ~= nil end

local function is_root()
  local f = io.popen("id -u")
  local u = f:read("l")
  f:close()
  return u == "0"
end

--- M.free_port() -> integer: a TCP port nothing listens on (checked with a bind attempt by
-- the shell is not portable, so: a port from the pid, probed through /proc/net/tcp).
function M.free_port()
  local used = {}
  for _, file in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
    local f = io.open(file, "r")
    if f then
      for line in f:lines() do
        local p = line:match("^%s*%d+:%s+%x+:(%x+)")
        if p then used[tonumber(p, 16)] = true end
      end
      f:close()
    end
  end
  local seed = (tonumber(tostring({}):match("0x(%x+)"), 16) or os.time()) % 20000
  for k = 0, 20000 do
    local port = 40000 + (seed + k * 7) % 20000
    if not used[port] then return port end
  end
  error("no free port")
end

local Server = {}
Server.__index = Server

-- runs a server binary as the server's user
function Server:as(cmd)
  if self.user then
    return string.format("setpriv --reuid=%s --regid=%s --clear-groups env HOME=%s %s",
      self.user, self.group, q(self.dir), cmd)
  end
  return cmd
end

--- s:ctl(args) -> code, output: pg_ctl with the server's data directory
function Server:ctl(args)
  return T.sh(self:as(string.format("%s/pg_ctl -D %s -w -t 30 %s", self.bin, q(self.data), args)))
end

--- s:start(): starts (or restarts) the server; raises with its log on failure.
function Server:start()
  local code, out = self:ctl(string.format("-l %s -o %s start", q(self.dir .. "/server.log"),
    q(string.format("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.sock))))
  if code ~= 0 then
    error("pg_ctl start failed: " .. out .. "\n" .. (T.readfile(self.dir .. "/server.log") or ""))
  end
  self.running = true
end

--- s:stop([mode]): pg_ctl stop -m mode ("fast" default, "immediate" = a crash).
function Server:stop(mode)
  if not self.running then return end
  self:ctl("-m " .. (mode or "fast") .. " stop")
  self.running = false
end

--- s:uri([db]) -> "postgresql://USER@127.0.0.1:PORT/DB" (TCP, trust authentication)
function Server:uri(db)
  return string.format("postgresql://sfi@127.0.0.1:%d/%s", self.port, db or "sfi")
end

--- s:psql(sql) -> code, output (one value per line, no header)
function Server:psql(sql)
  return T.sh(string.format("%s/psql -X -q -A -t -v ON_ERROR_STOP=1 %s -c %s", self.bin, q(self:uri()), q(sql)))
end

--- s:value(sql) -> text: the first line psql prints; raises on an error
function Server:value(sql)
  local code, out = self:psql(sql)
  assert(code == 0, "psql: " .. out)
  return (out:match("^([^\n]*)"))
end

--- M.start() -> server {dir, port, bin, uri(), psql(), stop(), start(), ctl()}: a fresh
-- cluster with a role "sfi" and a database "sfi". Skips the case when PostgreSQL is missing.
function M.start()
  local bin = M.bindir()
  if not bin then T.skip("PostgreSQL server binaries are not installed (postgresql)") end
  local dir = T.tmpdir()
  local s = setmetatable({ bin = bin, dir = dir, data = dir .. "/data", sock = dir .. "/sock",
    port = M.free_port() }, Server)
  assert(os.execute("mkdir -p " .. q(s.sock) .. " && chmod 755 " .. q(dir)))
  if is_root() then
    s.user, s.group = "nobody", "nogroup"
    assert(os.execute(string.format("chown -R %s:%s %s", s.user, s.group, q(dir))))
  end
  local code, out = T.sh(s:as(string.format("%s/initdb -D %s -U sfi -A trust -E UTF8 --no-locale",
    bin, q(s.data))))
  assert(code == 0, "initdb failed: " .. out)
  servers[#servers + 1] = s
  s:start()
  code, out = T.sh(string.format("%s/createdb -h 127.0.0.1 -p %d -U sfi sfi", bin, s.port))
  assert(code == 0, "createdb failed: " .. out)
  return s
end

--- M.stop_all(): stops every server started here (always call it at the end).
function M.stop_all()
  for _, s in ipairs(servers) do pcall(Server.stop, s, "immediate") end
  servers = {}
end

return M
