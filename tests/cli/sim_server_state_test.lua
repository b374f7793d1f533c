-- sim_server_state_test.lua: `sfirun sim-server --set state=FILE` keeps the chip on every
-- exit path. A client changes the chip, then the server is stopped with SIGTERM or SIGINT at
-- random moments around the client's exit: the file is always there and holds either the
-- state before the session or the state after it, never nothing and never a torn file.
local T = require "sfi.test"
local probe = require "sfi.probe"
local simserver = require "simserver"
local log = require "sfi.log"

log.configure { level = "error" }

local dir = T.tmpdir()
local MARK <const> = 0x08000000

-- The marker word the chip's flash holds at MARK (0xFFFFFFFF when erased).
local function marker(state)
  local p <close> = probe.open { uri = "sim:stm32h753?rss=off&state=" .. state }
  return p:read32(MARK)
end

-- Programs one flash word at MARK through the server (unlock, PG, 32 bytes, wait).
local function program(port, value)
  local p <close> = probe.open("stlink-tcp:" .. port)
  p:write32(0x52002004, 0x45670123)
  p:write32(0x52002004, 0xCDEF89AB)
  p:write32(0x5200200C, 0x2)
  local word = string.pack("<I4", value) .. string.rep("\xFF", 28)
  p:write(MARK, word)
  for _ = 1, 100 do
    if p:read32(0x52002010) & 0x4 == 0 then break end
  end
  p:write32(0x5200200C, 0x1)
end

math.randomseed(os.time())

T.case("state survives SIGTERM and SIGINT at random moments", function ()
  local state = dir .. "/chip.state"
  local outcomes = { old = 0, new = 0 }
  for i = 1, 8 do
    os.remove(state)
    do -- an initial saved state: an erased chip
      local p <close> = probe.open { uri = "sim:stm32h753?rss=off&state=" .. state }
      p:read32(0x5C001000)
    end
    assert(io.open(state, "rb")):close()
    local srv = simserver.start { dir = dir, set = { state = state } }
    local value = 0x1000 + i
    program(srv.port, value)
    -- stop the server 0 to 400 ms after its client left
    if i > 2 then os.execute(string.format("sleep %.3f", math.random() * 0.4)) end
    os.execute(string.format("kill -%s %d", i % 2 == 0 and "TERM" or "INT", srv.pid))
    for _ = 1, 100 do
      if not srv:running() then break end
      simserver.sleep(0.05)
    end
    srv.stopped = true
    assert(not srv:running(), "server did not stop")
    local f = io.open(state, "rb")
    assert(f, "state file missing after kill " .. i)
    f:close()
    local m = marker(state)
    if m == value then outcomes.new = outcomes.new + 1
    elseif m == 0xFFFFFFFF then outcomes.old = outcomes.old + 1
    else error(string.format("torn state: marker 0x%08X after kill %d", m, i)) end
    -- no temporary file left behind
    local _, ls = T.sh("ls " .. dir)
    assert(not ls:find("%.tmp%."), "temporary file left: " .. ls)
  end
  -- the server saves after each client and on SIGTERM/SIGINT: the session is never lost
  T.eq(outcomes.new, 8, string.format("old %d, new %d", outcomes.old, outcomes.new))
end)
