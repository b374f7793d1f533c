-- special_inputs_test.lua: every file sfirun reads refuses a directory, a FIFO or a device up
-- front with exit 2 and a message naming the input (a FIFO must not block the run, /dev/zero
-- must not fill memory), and numbers too large to be one are named as the user typed them.
-- Each run is killed after 20 s: a hang is a failure here, not a stalled suite.
local T = require "sfi.test"

local SFIRUN <const> = assert(os.getenv("SFIRUN"))
local SRC <const> = os.getenv("SFI_SOURCE_DIR") or "."
local dir = T.tmpdir()

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

assert(os.execute("mkfifo " .. q(dir .. "/fifo")))
assert(os.execute("mkdir " .. q(dir .. "/adir")))
require("fwgen").dev_image(dir, 4096, 7)

local RECIPE <const> = SRC .. "/recipes/h753.lua"

-- Runs sfirun in dir with args (a shell fragment), stdin closed, killed after 20 s.
local function run(args)
  return T.sh(string.format("cd %s && SFIRUN_STATE_DIR=%s timeout -s KILL 20 %s %s </dev/null",
    q(dir), q(dir .. "/st"), SFIRUN, args))
end

local function dev_run(extra)
  return string.format("%s --set image=fw.sfi --set key=key.bin --set nonce=nonce.bin " ..
    "--journal j.sqlite %s", q(RECIPE), extra)
end

T.case("special files are refused up front, exit 2, naming the input", function ()
  local cases = {
    -- the recipe itself
    { "/dev/zero", "is a device" },
    { "fifo", "is a fifo" },
    { "adir", "is a directory" },
    { "--plan fifo", "is a fifo" },
    { "--describe /dev/zero", "is a device" },
    -- a gang file
    { dev_run("--gang /dev/zero"), "is a device" },
    { dev_run("--gang fifo"), "is a fifo" },
    { dev_run("--gang adir"), "is a directory" },
    -- the firmware a run compares the flash with
    { dev_run("--probe sim:stm32h753 --set verify=fifo"), "is a fifo" },
    { dev_run("--probe sim:stm32h753 --set verify=/dev/zero"), "is a device" },
    -- a bundle
    { "bundle verify /dev/zero --trust key.bin", "is a device" },
    { "bundle verify fifo --trust key.bin", "is a fifo" },
    { "fifo.sfib --trust key.bin", "is a fifo" },
    -- captures
    { "trace fifo", "is a fifo" },
    { "trace diff fifo /dev/zero", "is a fifo" },
    { "trace adir", "is a directory" },
    -- a simulated socket's UID file
    { "ob read --probe 'sim:stm32h753?uid_file=/dev/zero'", "is a device" },
    { "ob read --probe 'sim:stm32h753?uid_file=fifo'", "is a fifo" },
    -- HSM provisioning inputs
    { "hsm provision --hsm 'pkcs11:token=x' --key /dev/zero --nonce nonce.bin --fwid F --max 1",
      "is a device" },
    { "hsm license --hsm 'pkcs11:token=x' --cert fifo -o lic.bin", "is a fifo" },
  }
  assert(os.execute("mkfifo " .. q(dir .. "/fifo.sfib")))
  local wrong = {} -- every case is tried; the failure lists all that went wrong
  for _, c in ipairs(cases) do
    local code, out = run(c[1])
    -- the message names the input as given (the special file in the arguments)
    local name = c[2]:find("device") and "/dev/zero" or c[2]:find("directory") and "adir" or
      c[1]:match("fifo%.sfib") or "fifo"
    if code ~= 2 or not out:find(c[2], 1, true) or not out:find(name, 1, true)
        or out:find("internal error", 1, true) or out:find("traceback", 1, true) then
      wrong[#wrong + 1] = string.format("%s: exit %s, want 2, '%s' and '%s': %s", c[1], code, c[2], name, out)
    end
  end
  T.eq(#wrong, 0, "\n" .. table.concat(wrong, "\n"))
  T.eq(io.open(dir .. "/lic.bin", "rb"), nil, "no licence file left behind")
end)

T.case("a number too large to be one is named as typed, not wrapped", function ()
  local big = "999999999999999999999"
  for _, args in ipairs {
    dev_run("--probe sim:stm32h753 --set tries=" .. big),
    "image build --devid 0x450 --firmware fw.bin 0x08000000 --key key.bin --nonce nonce.bin " ..
      "--ver " .. big .. " -o big.sfi",
    "image build --devid 0x450 --firmware fw.bin 0x" .. string.rep("F", 20) ..
      " --key key.bin --nonce nonce.bin -o big.sfi",
  } do
    local code, out = run(args)
    T.eq(code, 2, args .. " exit: " .. out)
    local typed = args:match("(0x" .. string.rep("F", 20) .. ")") or big
    T.eq(out:find(typed, 1, true) ~= nil, true, args .. ": names the value as typed: " .. out)
    local rest = out:gsub(typed:gsub("%p", "%%%0"), "")
    T.eq(rest:match("%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d+"), nil, args .. ": no wrapped value: " .. out)
  end
  T.eq(io.open(dir .. "/big.sfi", "rb"), nil, "no image left behind")
end)

