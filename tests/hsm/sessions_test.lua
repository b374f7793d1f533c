-- sessions_test.lua: several sessions on one token in one process (as a program holding one
-- per probe slot would): closing one session must not log the others out (PKCS#11 keeps one
-- login per token and application, and C_Logout ends it for every session), and licences keep
-- flowing from whichever sessions are still open.
local T = require "sfi.test"
local S = require "softhsm"
local hsm = require "sfi.hsm"
local license = require "sfi.license"

T.case("closing one session leaves the other sessions of the token logged in", function ()
  local tok = S.token()
  local h1 <close> = S.provision(tok, 5)
  local h2 <close> = hsm.open(tok.open_opts)
  local h3 <close> = hsm.open(tok.open_opts)
  local cert, chip_priv = S.chip("gang-1")
  h1:close()
  T.eq(h2:counter(), 5, "the second session still sees the private counter")
  local lic = h2:license(cert)
  T.eq(license.open(chip_priv, lic), tok.key, "a licence from the second session opens")
  h2:close()
  T.eq(h3:counter(), 4, "the third session, after two closed")
  h3:license(cert)
  -- a session opened after the others closed logs in again
  local h4 <close> = hsm.open(tok.open_opts)
  h3:close()
  T.eq(h4:counter(), 3, "a session opened later")
  h4:close()
end)

T.case("slots open and close in any order; every licence is counted", function ()
  local tok = S.token()
  S.provision(tok, 30):close()
  local cert = S.chip("gang-2")
  local open, issued = {}, 0
  local _ <close> = setmetatable({}, { __close = function () for _, h in pairs(open) do h:close() end end })
  local seed = 7
  local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n + 1 end
  for _ = 1, 60 do
    local k = rnd(4)
    if open[k] and rnd(3) == 1 then
      open[k]:close()
      open[k] = nil
    elseif not open[k] then
      open[k] = hsm.open(tok.open_opts)
    else
      local ok, err = pcall(open[k].license, open[k], cert)
      if ok then issued = issued + 1 else T.eq(err.code, "COUNTER", "only COUNTER refuses: " .. tostring(err)) end
    end
  end
  local left
  for k = 1, 4 do
    if open[k] then left = open[k]:counter(); open[k]:close() end
  end
  if not left then
    local h <close> = hsm.open(tok.open_opts)
    left = h:counter()
  end
  assert(issued > 5, "the schedule issued licences: " .. issued)
  T.eq(30 - left, issued, "decrements = licences issued")
end)
