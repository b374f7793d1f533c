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
  local lines = {
    { "image build -sfi -devid 0x450 -rs 0x1E000 -ct 0x081FF000 0 -v 0 -k FW_AES_key.bin " ..
      "-n FW_nonce.bin -ob SFI_Default.csv -fir just_bootloader.bin 0x08000000 -o just_bootloader.sfi",
      "just_bootloader.sfi", { "SFI image version : 0", "Area hashes : no" } },
    -- --deviceid, --firmware, --obfile, --ver, --ramsize, --token: the long spellings too
    { "image build --sfi --deviceid 0x450 --firmware just_bootloader.bin 0x08000000 " ..
      "--key FW_AES_key.bin --nonce FW_nonce.bin --obfile SFI_Default.csv --ver 3 --ramsize 0x1E000 " ..
      "--token 0x081FF000 --hash 1 --outfile long.sfi", "long.sfi", { "SFI image version : 3", "Area hashes : yes" } },
  }
  for _, l in ipairs(lines) do
    local code, out = run(dir, l[1])
    T.eq(code, 0, l[1] .. ": " .. out)
    code, out = run(dir, "image info " .. l[2])
    T.eq(code, 0, out)
    for _, want in ipairs(l[3]) do T.eq(out:find(want, 1, true) ~= nil, true, l[2] .. ": " .. want) end
  end
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

T.case("images from an earlier sfirun: image info says so", function ()
  local dir = setup()
  -- --ver 5 (earlier layout: image version in header byte 9, read as protocol 0x0502 now)
  T.eq((run(dir, "image build -devid 0x450 -k k.bin -n n.bin -fir fw.bin 0x08000000 --ver 5 -o new.sfi")), 0)
  local b = T.readfile(dir .. "/new.sfi")
  T.eq(b:sub(9, 12), "\2\0\1\0", "ST's layout: u16 protocol 2, u16 one area")
  T.eq(b:byte(30), 5, "the image version in the descriptor")
  T.writefile(dir .. "/old5.sfi", b:sub(1, 9) .. "\5" .. b:sub(11))
  local code, out = run(dir, "image info old5.sfi")
  T.eq(code, 2, out)
  T.eq(out:find("written by an earlier sfirun", 1, true) ~= nil, true, out)
  T.eq(out:find("rebuild it", 1, true) ~= nil, true, out)
  -- --ver 0 --hash 1: the same header, but 0x97 (the earlier hash marker) in the version byte
  T.eq((run(dir, "image build -devid 0x450 -k k.bin -n n.bin -fir fw.bin 0x08000000 --hash 1 -o h.sfi")), 0)
  b = T.readfile(dir .. "/h.sfi")
  T.writefile(dir .. "/old97.sfi", b:sub(1, 29) .. "\x97" .. b:sub(31))
  code, out = run(dir, "image info old97.sfi")
  T.eq(code, 0, out)
  T.eq(out:find("written by an earlier sfirun", 1, true) ~= nil, true, out)
  code = run(dir, "image info h.sfi")
  T.eq(code, 0, "a current image")
end)

T.case("bad input exits 2 and leaves no output file", function ()
  local dir = setup()
  assert(os.execute("mkfifo '" .. dir .. "/fifo'"))
  T.writefile(dir .. "/nul.csv", (gen.OB_CSV:gsub("^(FOPTSR_PRG,0x....)", "%1\0")))
  -- sparse files: one byte more than the largest image, the largest firmware file
  local image = require "sfi.image"
  assert(os.execute(string.format("truncate -s %d '%s/big.sfi' && truncate -s %d '%s/big.bin'",
    image.IMAGE_MAX + 1, dir, image.FIRMWARE_MAX + 1, dir)))
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
    -- a mistyped 16-character key path is a missing file, never the key itself; the value
    -- is not repeated (it may be a key typed where the path belongs)
    { "image build -k nokey_123456.bin -n n.bin -fir fw.bin 0x08000000 -o out.sfi",
      "--key: no such file", "nokey_123456" },
    { "image build -k k.bin -n 0123456789ab -fir fw.bin 0x08000000 -o out.sfi",
      "--nonce: no such file", "0123456789ab" },
    { "image verify out.sfi -k k.bin -n nonce_12345.", "--nonce: no such file", "nonce_12345" },
    { "image decrypt out.sfi -k 0123456789abcdef -n n.bin -o d", "--key: no such file",
      "0123456789abcdef" },
    -- a NUL inside an option-byte value: an error at its line and column, not a shorter value
    { "image build -devid 0x450 -k k.bin -n n.bin -fir fw.bin 0x08000000 -ob nul.csv -o out.sfi",
      "nul.csv:1:18: byte 0x00" },
    -- inputs larger than they can legally be are refused before reading
    { "image info big.sfi", "larger than" },
    { "image build -k k.bin -n n.bin -fir big.bin 0x08000000 -o out.sfi", "larger than" },
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
    if c[3] then T.eq(out:find(c[3], 1, true), nil, c[1] .. ": repeats the value: " .. out) end
    T.eq(out:find("traceback", 1, true), nil, c[1] .. ": no traceback (-v is the image version)")
    T.eq(out:find("scripts/sfi/", 1, true), nil, c[1] .. ": no internal path: " .. out)
    T.eq(T.readfile(dir .. "/out.sfi"), nil, c[1] .. ": no output file")
  end
  local _, ls = T.sh("ls -a '" .. dir .. "'")
  T.eq(ls:find(".tmp.", 1, true), nil, "no temporary file left")
end)
