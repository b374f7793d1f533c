--- softhsm: SoftHSM2 tokens for tests, one per call, each in its own temp directory with its
-- own SOFTHSM2_CONF (as libp11's tests/common.sh does). Skips the case if softhsm2 is absent.
local T = require "sfi.test"

local M = {}

M.MODULE = "/usr/lib/softhsm/libsofthsm2.so"
M.SRC = os.getenv("SFI_SOURCE_DIR") or "."
M.SFIRUN = os.getenv("SFIRUN") or "sfirun"

--- M.available() -> boolean
function M.available()
  local f = io.open(M.MODULE, "rb")
  if not f then return false end
  f:close()
  return (T.sh("command -v softhsm2-util")) == 0
end

--- M.token([label]) -> tok {dir, conf, pin_file, uri, env (shell prefix), open_opts}. The
-- token's licence guard lives in <dir>/lock (SFIRUN_LOCK_DIR in env and open_opts), never in
-- the station's /run/lock, so parallel test runs do not wait for each other.
function M.token(label)
  if not M.available() then T.skip("softhsm2 is not installed") end
  label = label or "sfi"
  local d = T.tmpdir()
  os.execute("mkdir -p '" .. d .. "/tokens' '" .. d .. "/lock'")
  T.writefile(d .. "/softhsm2.conf", string.format(
    "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n" ..
    "slots.removable = false\n", d))
  T.writefile(d .. "/pin", "1234\n")
  local env = "SOFTHSM2_CONF='" .. d .. "/softhsm2.conf' SFIRUN_LOCK_DIR='" .. d .. "/lock'"
  local code, out = T.sh(env .. " softhsm2-util --init-token --free --label " .. label ..
    " --so-pin 12345678 --pin 1234")
  assert(code == 0, "softhsm2-util failed: " .. out)
  local tok = { dir = d, conf = d .. "/softhsm2.conf", pin_file = d .. "/pin", label = label }
  tok.uri = "pkcs11:token=" .. label .. "?module-path=" .. M.MODULE ..
    "&pin-source=file:" .. tok.pin_file
  tok.env = env
  tok.open_opts = { uri = tok.uri, module_env = { SOFTHSM2_CONF = tok.conf, SFIRUN_LOCK_DIR = d .. "/lock" },
                    journal = d .. "/journal.sqlite" }
  -- firmware key material and a trusted CA for provisioning
  tok.key = "\x10\x21\x32\x43\x54\x65\x76\x87\x98\xa9\xba\xcb\xdc\xed\xfe\x0f"
  tok.nonce = "\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac"
  T.writefile(d .. "/key.bin", tok.key)
  T.writefile(d .. "/nonce.bin", tok.nonce)
  return tok
end

--- M.ca() -> ca_priv32, ca_pub64 (the simulator CA)
function M.ca()
  local license = require "sfi.license"
  return license.load_key(M.SRC .. "/vendor/sim/ca-key.pem", true)
end

--- M.chip(uid, [ca_priv]) -> cert136, chip_priv32
function M.chip(uid, ca_priv)
  local license = require "sfi.license"
  ca_priv = ca_priv or M.ca()
  local priv, pub = license.chip_identity(uid, string.rep("\x5a", 32))
  return license.make_cert(ca_priv, "45002001", pub), priv
end

--- M.provision(tok, max) -> session (open, provisioned)
function M.provision(tok, max)
  local hsm = require "sfi.hsm"
  local _, ca_pub = M.ca()
  local h = hsm.open(tok.open_opts)
  h:provision { key = tok.key, nonce = tok.nonce, fwid = "ACME-FW-1.0", max = max, ca = ca_pub }
  return h
end

return M
