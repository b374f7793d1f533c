--- sfi.config: run-wide settings filled by the command line (journal path, station name),
-- read by library modules. Plain data; recipes do not need it.
local M = {
  journal = nil,   -- licence journal database path (nil = default in the state directory)
  station = nil,   -- station name recorded in the journal (default: host name)
  trust = nil,     -- bundle trust key path
}

--- M.state_dir() -> path: $SFIRUN_STATE_DIR, else $XDG_STATE_HOME/sfirun, else ~/.local/state/sfirun.
function M.state_dir()
  local d = os.getenv("SFIRUN_STATE_DIR")
  if d and d ~= "" then return d end
  local x = os.getenv("XDG_STATE_HOME")
  if x and x ~= "" then return x .. "/sfirun" end
  return (os.getenv("HOME") or ".") .. "/.local/state/sfirun"
end

--- M.lock_timeout_ms: how long a licence request waits for another one on the same token.
M.lock_timeout_ms = 60000

return M
