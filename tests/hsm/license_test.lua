-- Licences from a real SoftHSM2 token: provision, licence, open on the chip side, counter,
-- wrong PIN, foreign chip, forged certificate, unreadable firmware key, journal rows.
local T = require "sfi.test"
local S = require "softhsm"
local hsm = require "sfi.hsm"
local license = require "sfi.license"
local journal = require "sfi.journal"

T.case("provision, licence, the chip opens it", function ()
  local tok = S.token()
  do
    local h <close> = S.provision(tok, 3)
    local info = h:info()
    T.eq(info.state, "provisioned", "state")
    T.eq(info.fwid, "ACME-FW-1.0", "fwid")
    T.eq(h:counter(), 3, "counter")
    local cert, chip_priv = S.chip("chip-A")
    local lic, after = h:license(cert, { uid = "0041", recipe = "test", station = "st1" })
    T.eq(#lic, 136, "licence size")
    T.eq(after, 2, "counter after")
    T.eq(h:counter(), 2, "counter read back")
    local key, iv = license.open(chip_priv, lic)
    T.eq(key, tok.key, "firmware key")
    T.eq(iv, tok.nonce .. "\0\0\0\0", "firmware IV")
    T.eq(license.parse(lic).version, 1, "licence version")
    assert(not lic:find(tok.key, 1, true), "the key is not in clear in the licence")
  end
  -- a new session sees the same counter (durable)
  local h <close> = hsm.open(tok.open_opts)
  T.eq(h:counter(), 2, "counter after reopen")
end)

T.case("counter falls by one per licence; at 0 nothing is made", function ()
  local tok = S.token()
  local h <close> = S.provision(tok, 2)
  local cert = S.chip("chip-A")
  local l1 = h:license(cert)
  T.eq(h:counter(), 1, "after first")
  local l2 = h:license(cert)
  T.eq(h:counter(), 0, "after second")
  assert(l1 ~= l2, "fresh ephemeral key per licence")
  T.raises("COUNTER", h.license, h, cert)
  T.eq(h:counter(), 0, "still 0")
  T.eq(h:info().counter_objects, 1, "one counter object")
end)

T.case("a licence for chip A is rejected by chip B", function ()
  local tok = S.token()
  local h <close> = S.provision(tok, 1)
  local cert_a = S.chip("chip-A")
  local _, priv_b = S.chip("chip-B")
  local lic = h:license(cert_a)
  T.raises("AUTH", license.open, priv_b, lic)
end)

T.case("a forged certificate is rejected before the counter moves", function ()
  local tok = S.token()
  local h <close> = S.provision(tok, 5)
  local cert = S.chip("chip-A")
  local forged = cert:sub(1, 100) .. string.char(cert:byte(101) ~ 1) .. cert:sub(102)
  T.raises("AUTH", h.license, h, forged)
  -- signed by another CA
  local other = license.chip_identity("other-ca", string.rep("\1", 32))
  local cert2 = S.chip("chip-A", other)
  T.raises("AUTH", h.license, h, cert2)
  T.raises("FORMAT", h.license, h, "\1" .. cert:sub(2))
  T.raises("FORMAT", h.license, h, cert:sub(1, 135))
  T.eq(h:counter(), 5, "counter unchanged")
end)

T.case("wrong PIN -> AUTH; missing PIN variable -> NOT_FOUND; pin-value refused", function ()
  local tok = S.token()
  T.writefile(tok.dir .. "/badpin", "9999\n")
  local o = { uri = tok.uri:gsub("pin%-source=file:[^&]*", "pin-source=file:" .. tok.dir .. "/badpin"),
              module_env = tok.open_opts.module_env }
  local e = T.raises("AUTH", hsm.open, o)
  assert(tostring(e):find("CKR_PIN_INCORRECT"), tostring(e))
  T.raises("NOT_FOUND", hsm.open, { uri = "pkcs11:token=sfi?module-path=" .. S.MODULE,
    pin_env = "SFI_TEST_NO_SUCH_VAR", module_env = tok.open_opts.module_env })
  T.raises("USAGE", hsm.open, { uri = "pkcs11:token=sfi?pin-value=1234" })
  T.raises("NOT_FOUND", hsm.open, { uri = "pkcs11:token=nosuch?module-path=" .. S.MODULE ..
    "&pin-source=file:" .. tok.pin_file, module_env = tok.open_opts.module_env })
end)

T.case("provisioning twice is refused", function ()
  local tok = S.token()
  local h <close> = S.provision(tok, 1)
  local _, ca_pub = S.ca()
  T.raises("LOCKED", h.provision, h, { key = tok.key, nonce = tok.nonce, fwid = "X", max = 9,
    ca = ca_pub })
  T.eq(h:counter(), 1, "counter unchanged")
end)

T.case("the firmware key cannot be read from the token", function ()
  local tok = S.token()
  do local _ <close> = S.provision(tok, 1) end -- provisioned, then closed at once
  local code, out = T.sh(tok.env .. " pkcs11-tool --module " .. S.MODULE ..
    " --token-label sfi --login --pin 1234 --read-object --type secrkey --label sfi-fwkey")
  assert(code ~= 0, "reading the key must fail: " .. out)
  assert(not out:find("\x10\x21\x32\x43", 1, true), "key bytes leaked")
  local _, attrs = T.sh(tok.env .. " pkcs11-tool --module " .. S.MODULE ..
    " --token-label sfi --login --pin 1234 -O --type secrkey")
  assert(attrs:find("sfi%-fwkey"), attrs)
  assert(attrs:find("sensitive"), "key is sensitive: " .. attrs)
end)

T.case("journal rows: request and outcome", function ()
  local tok = S.token()
  local h <close> = S.provision(tok, 1)
  local cert = S.chip("chip-A")
  h:license(cert, { uid = "0041", recipe = "r1", station = "st1" })
  pcall(h.license, h, cert, { uid = "0041", recipe = "r1", station = "st1" })
  local rows = journal.rows(tok.open_opts.journal)
  T.eq(#rows, 2, "rows")
  T.eq(rows[1].outcome, "ok", "first outcome")
  T.eq(rows[1].counter_before, 1, "before")
  T.eq(rows[1].counter_after, 0, "after")
  T.eq(rows[1].uid, "0041", "uid")
  T.eq(rows[1].fwid, "ACME-FW-1.0", "fwid")
  T.eq(rows[1].station, "st1", "station")
  T.eq(#rows[1].cert_sha256, 64, "cert hash")
  T.eq(rows[2].outcome, "COUNTER", "second outcome")
end)
