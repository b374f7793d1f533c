-- bundle_sign_test.lua: `bundle create --sign pkcs11:...` with an EC P-256 key generated inside
-- a SoftHSM2 token (never extractable, made with OpenSC's pkcs11-tool as an OEM would): the
-- bundle verifies and runs with the public key exported from the token, and every mistake in
-- the URI, the PIN, the key or the token is one clear message with exit 2 (usage) or 1.
local T = require "sfi.test"
local S = require "softhsm"
local raw = require "sfi.core.bundle"

local SFIRUN = S.SFIRUN

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local tok = S.token("oem")
if (T.sh("command -v pkcs11-tool")) ~= 0 then T.skip("pkcs11-tool (opensc) is not installed") end
local P11 = string.format("%s pkcs11-tool --module %s --token-label oem", tok.env, S.MODULE)
local code, out = T.sh(P11 .. " --login --pin 1234 --keypairgen --key-type EC:prime256v1 " ..
  "--label oem-sign --id 0a01 --usage-sign --sensitive")
assert(code == 0, "pkcs11-tool --keypairgen: " .. out)
assert(out:find("never extractable", 1, true), "the key is generated non-extractable: " .. out)
local pub = tok.dir .. "/oem.pub"
code, out = T.sh(string.format("%s --read-object --type pubkey --label oem-sign -o %s && " ..
  "openssl pkey -pubin -inform DER -in %s -out %s", P11, q(tok.dir .. "/oem.der"),
  q(tok.dir .. "/oem.der"), q(pub)))
assert(code == 0, "exporting the public key: " .. out)

local image = tok.dir .. "/app.sfi"
T.writefile(image, string.rep("\1", 321))

local function uri(path, query)
  return "pkcs11:token=oem;" .. path .. "?module-path=" .. S.MODULE .. (query or
    "&pin-source=file:" .. tok.pin_file)
end

local function create(sign, out_path, env)
  return T.sh(string.format("%s %s %s bundle create tests/data/bundle/ok.lua -C tests/data/bundle " ..
    "--include scripts --include data --sign %s -o %s", tok.env, env or "", SFIRUN, q(sign),
    q(out_path)))
end

T.case("a bundle signed on the token verifies and runs with the exported public key", function ()
  for _, sel in ipairs { "object=oem-sign", "id=%0a%01", "object=oem-sign;id=%0A%01;type=private" } do
    local b = tok.dir .. "/ok.sfib"
    os.remove(b)
    local c, text = create(uri(sel), b)
    T.eq(c, 0, sel .. ": create exit\n" .. text)
    local fp = raw.fingerprint(T.readfile(pub))
    assert(text:find("signer " .. fp, 1, true), "the token key's fingerprint is printed: " .. text)
    assert(not text:find("1234", 1, true), "no PIN in the output")
    c, text = T.sh(string.format("%s bundle verify %s --trust %s", SFIRUN, q(b), q(pub)))
    T.eq(c, 0, sel .. ": verify exit\n" .. text)
    assert(text:find("signer " .. fp, 1, true), text)
    c, text = T.sh(string.format("%s %s --trust %s --set image=%s", SFIRUN, q(b), q(pub), q(image)))
    T.eq(c, 0, sel .. ": run exit\n" .. text)
    assert(text:find("READ! image 321 bytes", 1, true), text)
  end
  -- another key does not verify it
  local other = tok.dir .. "/other.pem"
  T.sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. q(other) ..
    " && openssl pkey -in " .. q(other) .. " -pubout -out " .. q(other .. ".pub"))
  local c, text = T.sh(string.format("%s bundle verify %s --trust %s", SFIRUN,
    q(tok.dir .. "/ok.sfib"), q(other .. ".pub")))
  T.eq(c, 1, "verify with another key\n" .. text)
  assert(text:find("not by the trusted key", 1, true), text)
end)

T.case("mistakes: one clear message each, exit 2 or 1, no bundle written", function ()
  local b = tok.dir .. "/bad.sfib"
  local cases = {
    { uri("objct=oem-sign"), 2, "unknown or unused attribute 'objct'" },
    { uri("object=oem-sign", "&pin-value=1234"), 2, "pin-value refused" },
    { uri("object=oem-sign", "&pin-sorce=file:" .. tok.pin_file), 2, "attribute 'pin-sorce'" },
    { "pkcs11:token=oem?module-path=" .. S.MODULE, 2, "needs object=LABEL or id=" },
    { uri("object=oem-sign;type=cert"), 2, "a signing key is type=private" },
    { uri("id=%0g"), 2, "bad id" },
    { uri("object=oem-sign", "&pin-source=env:OEM_PIN"), 1, "CKR_PIN_INCORRECT", "OEM_PIN=0000" },
    { uri("object=oem-sign", "&pin-source=env:OEM_PIN"), 1, "PIN variable OEM_PIN is not set" },
    { uri("object=no-such-key"), 1, "token 'oem' has no private key labelled 'no-such-key'" },
    { uri("id=%0a%02"), 1, "has no private key with that id" },
    { (uri("object=oem-sign"):gsub("token=oem", "token=nope")), 1, "no PKCS#11 token labelled 'nope'" },
    { (uri("object=oem-sign"):gsub("module%-path=[^&]*", "module-path=/nonexistent/p11.so")), 1,
      "PKCS#11 module /nonexistent/p11.so not found" },
  }
  for _, c in ipairs(cases) do
    local code2, text = create(c[1], b, c[4])
    T.eq(code2, c[2], c[1] .. ": exit code\n" .. text)
    assert(text:find(c[3], 1, true), c[1] .. ": message names the mistake: " .. text)
    assert(not text:find("1234", 1, true), "no PIN in the message")
    assert(not text:find("stack traceback", 1, true), "no traceback: " .. text)
    local lines = select(2, text:gsub("\n", ""))
    T.eq(lines, 1, "one line: " .. text)
    T.eq(io.open(b), nil, "no bundle written")
    T.eq(io.open(b .. ".tmp"), nil, "no temporary file")
  end
end)

T.case("the licence token URI refuses key selectors", function ()
  local c, text = T.sh(string.format("%s %s hsm info --hsm %s", tok.env, SFIRUN, q(uri("object=oem-sign"))))
  T.eq(c, 2, "exit code\n" .. text)
  assert(text:find("select a signing key", 1, true), text)
end)
