-- fail_early_test.lua: a wrong HSM PIN and a typo in a reconnect policy stop an install before
-- the probe is opened (the simulated chip's state file is never written) and before anything is
-- spent (the token's counter is unchanged).
local T = require "sfi.test"
local S = require "softhsm"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local tok = S.token()
local uri = "pkcs11:token=sfi?module-path=" .. S.MODULE
local function run(pin, cmd)
  return T.sh(tok.env .. " SFI_HSM_PIN=" .. pin .. " SFIRUN_STATE_DIR=" .. q(tok.dir .. "/state") ..
    " " .. q(S.SFIRUN) .. " " .. cmd .. " 2>&1")
end

local function counter()
  local code, out = run("1234", "hsm info --hsm " .. q(uri) .. " --json")
  T.eq(code, 0, out)
  return tonumber(out:match('"counter":(%d+)'))
end

do
  local code, out = run("1234", "hsm provision --hsm " .. q(uri) .. " --key " .. tok.dir ..
    "/key.bin --nonce " .. tok.dir .. "/nonce.bin --fwid FW-7 --max 3 --ca " .. S.SRC ..
    "/vendor/sim/ca-pub.pem")
  T.eq(code, 0, "provision: " .. out)
  T.writefile(tok.dir .. "/fw.bin", require("fwgen").bytes(20000, 3))
  code, out = run("1234", string.format("image build --devid 0x450 --firmware %s 0x08000000 " ..
    "--key %s --nonce %s --hash 0 -o %s", q(tok.dir .. "/fw.bin"), q(tok.dir .. "/key.bin"),
    q(tok.dir .. "/nonce.bin"), q(tok.dir .. "/fw.sfi")))
  T.eq(code, 0, "image build: " .. out)
end

local STATE <const> = tok.dir .. "/chip.state"
local function install(pin, recipe)
  return run(pin, string.format("%s --hsm %s --set image=%s --probe %s", q(recipe), q(uri),
    q(tok.dir .. "/fw.sfi"), q("sim:stm32h753?state=" .. STATE)))
end

local function untouched(out, before)
  T.eq(io.open(STATE), nil, "the probe was opened (the chip's state file exists)\n" .. out)
  assert(not out:find("Connecting to", 1, true), out)
  T.eq(counter(), before, "the counter is unchanged")
end

T.case("the recipe runs at all with the right PIN (so the failures below are the PIN and the typo)",
function ()
  local code, out = install("1234", S.SRC .. "/recipes/examples/h753_own_reconnect.lua")
  T.eq(code, 0, out)
  T.eq(counter(), 2)
  os.remove(STATE)
  os.execute("rm -rf " .. q(tok.dir .. "/state"))
end)

T.case("a wrong PIN fails before the probe is opened", function ()
  local before = counter()
  local code, out = install("0000", S.SRC .. "/recipes/h753.lua")
  T.eq(code, 1, out)
  assert(out:find("CKR_PIN_INCORRECT", 1, true), out)
  assert(not out:find("0000", 1, true), "the PIN is not printed\n" .. out)
  T.eq(io.open(STATE), nil, "the probe was opened\n" .. out)
  T.eq(counter(), before)
end)

-- the example recipe with one policy field misspelt (delay for delay_ms)
local function typo(from, to)
  local src = assert(io.open(S.SRC .. "/recipes/examples/h753_own_reconnect.lua")):read("a")
  local n
  src, n = src:gsub(from, to)
  T.eq(n, 1, "the example recipe still holds '" .. from .. "'")
  local path = tok.dir .. "/typo.lua"
  T.writefile(path, src)
  return path
end

T.case("a typo in a recipe's reconnect policy: exit 2 naming the field, nothing touched", function ()
  local before = counter()
  local code, out = install("1234", typo("delay_ms = 300", "delay = 300"))
  T.eq(code, 2, out)
  assert(out:find("unknown field 'delay'", 1, true) and out:find("delay_ms", 1, true), out)
  untouched(out, before)
end)

T.case("a bad policy value and a bad strategy name: exit 2, nothing touched", function ()
  local before = counter()
  local code, out = install("1234", typo("connect_mode = \"under%-reset\"", "connect_mode = \"underreset\""))
  T.eq(code, 2, out)
  assert(out:find("connect_mode: unknown value 'underreset'", 1, true), out)
  untouched(out, before)
  code, out = run("1234", string.format("%s/recipes/h753.lua --hsm %s --set image=%s --probe %s " ..
    "--set strategy=alternating", S.SRC, q(uri), q(tok.dir .. "/fw.sfi"), q("sim:stm32h753?state=" .. STATE)))
  T.eq(code, 2, out)
  assert(out:find("strategy", 1, true) and out:find("alternating", 1, true), out)
  untouched(out, before)
end)

T.summary()
