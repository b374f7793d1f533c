-- image_cli_test.lua: `sfirun image build|info|verify|decrypt` as ST's users type it: exit
-- codes (0 ok, 1 bad tag, 2 bad input), no partial output, messages naming the problem.
local T = require "sfi.test"
local gen = require "fwgen"

local SFIRUN = os.getenv("SFIRUN")

local function run(dir, cmd)
  return T.sh("cd '" .. dir .. "' && '" .. SFIRUN .. "' " .. cmd)
end

local function setup()
  local dir = T.tmpdir()
  T.writefile(dir .. "/k.bin", ("k"):rep(16))
  T.writefile(dir .. "/n.bin", ("n"):rep(12))
  T.writefile(dir .. "/k2.bin", ("j"):rep(16))
  T.writefile(dir .. "/fw.bin", gen.bytes(182592, 5))
  T.writefile(dir .. "/ob.csv", gen.OB_CSV)
  return dir
end

local TPC = "image build -devid 0x450 -rs 0x1E000 -ct 0x081FF000 0 -v 0 -k k.bin -n n.bin " ..
  "-ob ob.csv -fir fw.bin 0x08000000 -hash 1 -o out.sfi"

T.case("TPC command line builds; info prints like ST's programmer", function ()
  local dir = setup()
  local code, out = run(dir, TPC)
  T.eq(code, 0, "build exit: " .. out)
  code, out = run(dir, "image info out.sfi")
  T.eq(code, 0, "info exit")
  for _, line in ipairs { "SFI protocol version : 2", "SFI total number of areas : 5",
      "SFI image version : 0", "Parsing Area 1/5 :", "Area type : F", "Area size : 122816",
      "Area destination address : 0x8000000", "Area size : 59776",
      "Area destination address : 0x801DFC0", "SFI parts : 2" } do
    T.eq(out:find(line, 1, true) ~= nil, true, "line '" .. line .. "'")
  end
  code, out = run(dir, "image info out.sfi --json")
  T.eq(code, 0, "info --json exit")
  T.eq(out:find('"event":"area"', 1, true) ~= nil, true, "json area events")
end)

T.case("the TPC command line of the first user report runs unchanged", function ()
  local dir = setup()
  T.writefile(dir .. "/FW_AES_key.bin", ("k"):rep(16))
  T.writefile(dir .. "/FW_nonce.bin", ("n"):rep(12))
  T.writefile(dir .. "/SFI_Default.csv", gen.OB_CSV)
  T.writefile(dir .. "/just_bootloader.bin", gen.bytes(4096, 9))
  local code, out = run(dir, "image build -sfi -devid 0x450 -rs 0x1E000 -ct 0x081FF000 0 -v 0 " ..
    "-k FW_AES_key.bin -n FW_nonce.bin -ob SFI_Default.csv -fir just_bootloader.bin 0x08000000 " ..
    "-o just_bootloader.sfi")
  T.eq(code, 0, "exit: " .. out)
  code, out = run(dir, "image info just_bootloader.sfi")
  T.eq(code, 0, out)
  assert(out:find("SFI image version : 0", 1, true) and out:find("Area hashes : no", 1, true), out)
  -- --deviceid, --firmware, --obfile, --ver, --ramsize, --token: the long spellings too
  code, out = run(dir, "image build --sfi --deviceid 0x450 --firmware just_bootloader.bin 0x08000000 " ..
    "--key FW_AES_key.bin --nonce FW_nonce.bin --obfile SFI_Default.csv --ver 3 --ramsize 0x1E000 " ..
    "--token 0x081FF000 --hash 1 --outfile long.sfi")
  T.eq(code, 0, "long options: " .. out)
  code, out = run(dir, "image info long.sfi")
  T.eq(code, 0, out)
  assert(out:find("SFI image version : 3", 1, true) and out:find("Area hashes : yes", 1, true), out)
end)

T.case("verify and decrypt; wrong key exits 1 naming the header; no overwrite", function ()
  local dir = setup()
  T.eq((run(dir, TPC)), 0, "build")
  local code, out = run(dir, "image verify out.sfi --key k.bin --nonce n.bin")
  T.eq(code, 0, "verify: " .. out)
  code, out = run(dir, "image verify out.sfi --key k2.bin --nonce n.bin")
  T.eq(code, 1, "wrong key exit")
  T.eq(out:find("header tag", 1, true) ~= nil, true, "names the header: " .. out)
  code, out = run(dir, "image decrypt out.sfi -k k.bin -n n.bin -o dec")
  T.eq(code, 0, "decrypt: " .. out)
  local a = T.readfile(dir .. "/dec/area01_F_08000000.bin")
  local b = T.readfile(dir .. "/dec/area04_F_0801DFC0.bin")
  T.eq(a .. b == T.readfile(dir .. "/fw.bin"), true, "plaintext matches the firmware")
  code, out = run(dir, "image decrypt out.sfi -k k.bin -n n.bin -o dec")
  T.eq(code, 2, "refuses to overwrite")
  T.eq(out:find("not overwritten", 1, true) ~= nil, true, out)
  -- a flipped byte in area 4's ciphertext
  local s = T.readfile(dir .. "/out.sfi")
  local at = #s - 36 - 46 - 100
  T.writefile(dir .. "/bad.sfi", s:sub(1, at - 1) .. string.char(s:byte(at) ~ 1) .. s:sub(at + 1))
  code, out = run(dir, "image verify bad.sfi -k k.bin -n n.bin")
  T.eq(code, 1, "tampered exit")
  T.eq(out:find("area 4", 1, true) ~= nil, true, "names area 4: " .. out)
end)

T.case("bad input exits 2 and leaves no output file", function ()
  local dir = setup()
  assert(os.execute("mkfifo '" .. dir .. "/fifo'"))
  local cases = {
    { "image build -k k.bin -n n.bin -fir fw.bin 0x08000000 -o out.bin", "must end with .sfi" },
    { "image build -k k.bin -n n.bin -fir fw.bin -o out.sfi", "needs an address" },
    { "image build -devid 0x450 -k k.bin -n n.bin -fir fw.bin 0x30000000 -o out.sfi", "outside flash" },
    { "image build -k k.bin -n n.bin -fir fw.bin 0x08000000 -fir fw.bin 0x08001000 -o out.sfi", "overlaps" },
    { "image build -k n.bin -n n.bin -fir fw.bin 0x08000000 -o out.sfi", "key file" },
    { "image build -k k.bin -n n.bin -fir missing.bin 0x08000000 -o out.sfi", "missing.bin" },
    { "image build -k k.bin -n n.bin -fir fw.bin 0x08000000 -v 300 -o out.sfi", "0..255" },
    { "image build -devid 0x450 -k k.bin -n n.bin -fir fw.bin 0x08000000 -ob k.bin -o out.sfi",
      "k.bin:1:" },
    -- a mistyped 16-character key path is a missing file, never the key itself
    { "image build -k nokey_123456.bin -n n.bin -fir fw.bin 0x08000000 -o out.sfi",
      "key file 'nokey_123456.bin': no such file" },
    { "image verify out.sfi -k k.bin -n nonce_12345.", "nonce file 'nonce_12345.': no such file" },
    { "image info /dev/zero", "is a device, not a file" },
    { "image info .", "is a directory, not a file" },
    { "image info fifo", "is a fifo, not a file" },
    { "image build -k k.bin -n n.bin -fir /dev/zero 0x08000000 -o out.sfi", "is a device" },
    { "image build -k k.bin -n n.bin -fir . 0x08000000 -o out.sfi", "is a directory" },
    { "image build -sfi -k k.bin -n n.bin -fir fw.bin 0x08000000 -ssfi x.ssfi -o out.sfi",
      "secure manager areas" },
    { "image build -k k.bin -n n.bin -fir fw.bin 0x08000000 -ob k.bin -o out.sfi", "needs the device" },
    { "image info fw.bin", "magic" },
    { "image frobnicate", "unknown image command" },
  }
  for _, c in ipairs(cases) do
    local code, out = run(dir, c[1])
    T.eq(code, 2, c[1] .. " exit: " .. out)
    T.eq(out:find(c[2], 1, true) ~= nil, true, c[1] .. " message: " .. out)
    T.eq(out:find("traceback", 1, true), nil, c[1] .. ": no traceback (-v is the image version)")
    T.eq(out:find("scripts/sfi/", 1, true), nil, c[1] .. ": no internal path: " .. out)
    T.eq(T.readfile(dir .. "/out.sfi"), nil, c[1] .. ": no output file")
  end
  local _, ls = T.sh("ls -a '" .. dir .. "'")
  T.eq(ls:find(".tmp.", 1, true), nil, "no temporary file left")
end)
