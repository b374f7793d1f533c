-- st_h5_image_test.lua: a real protocol-2 image made by ST's Trusted Package Creator v2.16.0
-- (tests/data/st-tpc-2024-h5, see its PROVENANCE.md) against sfirun's codec: info lists the
-- areas as TPC's own log does, verify and decrypt with its key and nonce give back every input,
-- a flipped byte anywhere fails, and sfirun's builder reproduces the file byte for byte.
local T = require "sfi.test"
local image = require "sfi.image"
local license = require "sfi.license"

local SRC = os.getenv("SFI_SOURCE_DIR") or "."
local SFIRUN = os.getenv("SFIRUN")
local D = SRC .. "/tests/data/st-tpc-2024-h5/"
local KEY, NONCE = D .. "SFI_Encryption_Key.bin", D .. "SFI_Encryption_Nonce.bin"
local SFI = D .. "SecureManagerPackage.sfi"

-- TPC's own listing of the image, from its log: { {type, size, addr}... }
local function tpc_areas()
  local log = T.readfile(D .. "provisioning.log")
  log = log:match("Parse SFI image:(.-)STM32CubeProgrammer") -- TPC's part of the log
  local out = {}
  for t, size, addr in log:gmatch("Area type%s*: (%u)%s+Area size%s*: (%d+)%s+" ..
      "Area destination address%s*: 0x(%x+)") do
    out[#out + 1] = { t, math.tointeger(tonumber(size)), math.tointeger(tonumber(addr, 16)) }
  end
  return out
end

-- An Intel HEX reader independent of sfirun's: { [addr] = byte } runs as {addr, data} sorted.
local function hex_runs(text)
  local bytes, base = {}, 0
  for line in text:gmatch("[^\r\n]+") do
    local n, a, t, d = line:match("^:(%x%x)(%x%x%x%x)(%x%x)(%x*)%x%x$")
    n, a, t = tonumber(n, 16), tonumber(a, 16), tonumber(t, 16)
    if t == 0 then
      for i = 0, n - 1 do bytes[base + a + i] = tonumber(d:sub(2 * i + 1, 2 * i + 2), 16) end
    elseif t == 4 then base = tonumber(d, 16) << 16
    elseif t == 2 then base = tonumber(d, 16) << 4 end
  end
  local addrs = {}
  for k in pairs(bytes) do addrs[#addrs + 1] = k end
  table.sort(addrs)
  local runs, cur = {}, nil
  for _, k in ipairs(addrs) do
    if cur and k == cur.addr + #cur.buf then cur.buf[#cur.buf + 1] = string.char(bytes[k])
    else cur = { addr = k, buf = { string.char(bytes[k]) } }; runs[#runs + 1] = cur end
  end
  for _, r in ipairs(runs) do r.data = table.concat(r.buf); r.buf = nil end
  return runs
end

T.case("info lists the 13 areas exactly as TPC's log does", function ()
  local img <close> = image.load(SFI)
  local info = img:info()
  T.eq({ info.protocol, info.areas, info.version, info.hashed }, { 2, 13, 0, true }, "header")
  local got = {}
  for _, a in ipairs(img:areas()) do got[#got + 1] = { a.type, a.size, a.addr } end
  local want = tpc_areas()
  T.eq(#want, 13, "areas in TPC's log")
  T.eq(got, want, "areas")
  local raw = T.readfile(SFI)
  T.eq(raw:sub(9, 12), "\2\0\13\0", "header bytes 8..11: u16 protocol, u16 area count")
end)

T.case("sfirun image info prints the areas TPC's log lists", function ()
  local code, out = T.sh(string.format("%s image info '%s'", SFIRUN, SFI))
  T.eq(code, 0, out)
  local got = {}
  for t, size, addr in out:gmatch("Area type : (%u)%s+Area size : (%d+)%s+" ..
      "Area destination address : 0x(%x+)") do
    got[#got + 1] = { t, math.tointeger(tonumber(size)), math.tointeger(tonumber(addr, 16)) }
  end
  T.eq(got, tpc_areas(), "areas")
  for _, line in ipairs { "SFI protocol version : 2", "SFI total number of areas : 13",
      "SFI image version : 0", "Area hashes : yes" } do
    T.eq(out:find(line, 1, true) ~= nil, true, line)
  end
end)

T.case("verify with the key and nonce; decrypt gives back every input", function ()
  local img <close> = image.load(SFI)
  T.eq(img:verify(KEY, NONCE), true, "verify")
  local dec = img:decrypt(KEY, NONCE)
  local by = {}
  for _, a in ipairs(dec) do by[a.type] = by[a.type] or {}; table.insert(by[a.type], a) end
  -- F areas: the two HEX files, 0xFF-padded to a multiple of 16
  local runs = hex_runs(T.readfile(D .. "appli_0.hex"))
  for _, r in ipairs(hex_runs(T.readfile(D .. "ITS_Factory.hex"))) do runs[#runs + 1] = r end
  table.sort(runs, function (x, y) return x.addr < y.addr end)
  T.eq(#by.F, #runs, "one F area per HEX run")
  for i, a in ipairs(by.F) do
    local want = runs[i].data
    want = want .. ("\xFF"):rep((16 - #want % 16) % 16)
    T.eq(a.addr, runs[i].addr, "F " .. i .. " address")
    T.eq(a.data == want, true, "F " .. i .. " data")
  end
  -- C area: the CSV's twelve values as little-endian words
  local words = {}
  for v in T.readfile(D .. "Option_Bytes.csv"):gmatch(",0x(%x+)") do
    words[#words + 1] = string.pack("<I4", tonumber(v, 16))
  end
  T.eq(#words, 12, "CSV rows")
  T.eq(by.C[1].data, table.concat(words), "C area")
  -- S areas joined: the secure manager package
  local s = {}
  for _, a in ipairs(by.S) do s[#s + 1] = a.data end
  T.eq(table.concat(s) == T.readfile(D .. "SecureManagerPackage_PROD_v1.1.4.ssfi"), true, "S areas")
  -- O areas: a 16-byte prefix, then an .obk file without its 12-byte header
  local obk = { "DA_Config.obk", "SM_Config_Keys.obk", "SM_Config_General.obk", "SM_Config_Other.obk" }
  for i, a in ipairs(by.O) do
    T.eq(a.data:sub(17) == T.readfile(D .. obk[i]):sub(13), true, "O " .. i .. " holds " .. obk[i])
  end
  T.eq(#by.H[1].data, 16, "H record")
end)

T.case("a flipped byte in the header, any descriptor, hash, tag or ciphertext fails", function ()
  local raw = T.readfile(SFI)
  local img <close> = image.load(SFI)
  local at = {}
  for i = 1, 28 do at[#at + 1] = i end
  for _, a in ipairs(img:areas()) do
    local o = a.offset + 1
    for _, k in ipairs { 0, 1, 2, 4, 8, 12, 14, 29, 30, 45, 46, a.length - 1 } do at[#at + 1] = o + k end
  end
  local missed = {}
  for _, pos in ipairs(at) do
    local bad = raw:sub(1, pos - 1) .. string.char(raw:byte(pos) ~ 0x10) .. raw:sub(pos + 1)
    local ok, im = pcall(image.parse, bad)
    if ok then
      local fine = im:verify(KEY, NONCE)
      im:close()
      if fine then missed[#missed + 1] = pos end
    end
  end
  T.eq(#at > 150, true, "positions tried: " .. #at)
  T.eq(missed, {}, "flips not detected")
end)

T.case("sfirun image build reproduces ST's file byte for byte", function ()
  local dir = T.tmpdir()
  local q = function (s) return "'" .. s .. "'" end
  local code, out = T.sh(string.format("%s image decrypt %s -k %s -n %s -o %s", SFIRUN, q(SFI), q(KEY),
    q(NONCE), q(dir .. "/dec")))
  T.eq(code, 0, out)
  -- H, O and S come from Secure Manager inputs sfirun does not make: their plaintexts are given
  local extra = {}
  for _, a in ipairs(image.load(SFI):areas()) do
    if a.type == "H" or a.type == "O" or a.type == "S" then
      extra[#extra + 1] = string.format("--area %s 0x%08X %s/dec/area%02d_%s_%08X.bin", a.type, a.addr,
        dir, a.index, a.type, a.addr)
    end
  end
  -- F and C from ST's own inputs, with TPC's command line (PROVENANCE.md) as written, but
  -- --area for its --ob-keys and -ssfi: --ver 0 --ramsize 0x20800 --hash 1, same area order
  code, out = T.sh(string.format("cd %s && %s image build -sfi --deviceid 0x484 %s --firmware appli_0.hex " ..
    "--firmware ITS_Factory.hex --key SFI_Encryption_Key.bin --nonce SFI_Encryption_Nonce.bin " ..
    "--obfile Option_Bytes.csv --ver 0 --ramsize 0x20800 --hash 1 --outfile %s", q(D), SFIRUN,
    table.concat(extra, " "), q(dir .. "/out.sfi")))
  T.eq(code, 0, out)
  -- TPC's own line, unchanged: --ob-keys and -ssfi are refused by name, exit 2, no traceback
  code, out = T.sh(string.format("cd %s && %s image build -sfi --deviceid 0x484 --firmware appli_0.hex " ..
    "--firmware ITS_Factory.hex --key SFI_Encryption_Key.bin --nonce SFI_Encryption_Nonce.bin " ..
    "--obfile Option_Bytes.csv --ob-keys DA_Config.obk SM_Config_Keys.obk SM_Config_General.obk " ..
    "SM_Config_Other.obk -ssfi SecureManagerPackage_PROD_v1.1.4.ssfi --ver 0 --ramsize 0x20800 " ..
    "--hash 1 --outfile %s", q(D), SFIRUN, q(dir .. "/tpc.sfi")))
  T.eq(code, 2, out)
  T.eq(out:find("option-byte key areas (--ob-keys)", 1, true) ~= nil, true, out)
  T.eq(out:find("traceback", 1, true), nil, out)
  T.eq(T.readfile(dir .. "/tpc.sfi"), nil, "no output")
  local mine, st = T.readfile(dir .. "/out.sfi"), T.readfile(SFI)
  T.eq(#mine, #st, "size")
  local first
  for i = 1, #st do if mine:byte(i) ~= st:byte(i) then first = i - 1; break end end
  T.eq(first, nil, "first differing byte offset")
end)

-- What docs/sfi-image.md says about the H, O and S areas of this image (observed, not built).
T.case("H, O and S areas: what this image shows about them", function ()
  local img <close> = image.load(SFI)
  local dec = img:decrypt(KEY, NONCE)
  local by = {}
  for _, a in ipairs(dec) do by[a.type] = by[a.type] or {}; table.insert(by[a.type], a) end
  -- H: "SSFI", u32 = the number of S areas, u32 0xF5F5A0AA, u32 0xFFFFFFFF
  T.eq({ string.unpack("<c4I4I4I4", by.H[1].data) }, { "SSFI", #by.S, 0xF5F5A0AA, 0xFFFFFFFF, 17 }, "H")
  -- O: an .obk file is u32 destination | u32 payload size | u32 1 | payload; its area has
  -- that destination and holds u32 0xF5F5A0AA twice, 8 zero bytes, then the payload
  local obk = { "DA_Config.obk", "SM_Config_Keys.obk", "SM_Config_General.obk", "SM_Config_Other.obk" }
  for i, a in ipairs(by.O) do
    local f = T.readfile(D .. obk[i])
    local dest, n, one = string.unpack("<I4I4I4", f)
    T.eq({ a.addr, #a.data, one, #f }, { dest, 16 + n, 1, 12 + n }, obk[i])
    T.eq(a.data:sub(1, 16), string.pack("<I4I4", 0xF5F5A0AA, 0xF5F5A0AA) .. ("\0"):rep(8), obk[i] .. " prefix")
  end
  -- S: the .ssfi is itself "SFIMAGIC" with a 128-byte header and 22 hashed areas (version byte
  -- 0xAA); TPC cut it at those areas' boundaries, each S area at most --ramsize (0x20800)
  -- and the next whole area would not fit
  local ssfi = T.readfile(D .. "SecureManagerPackage_PROD_v1.1.4.ssfi")
  T.eq(ssfi:sub(1, 8), "SFIMAGIC", "ssfi magic")
  local count = string.unpack("<I2", ssfi, 15)
  local bounds, off, types = { [128] = true }, 128, {}
  for i = 1, count do
    local t, ver, idx, size, _, total = string.unpack("<BBI2I4I4I2", ssfi, off + 1)
    T.eq({ ver, idx, total }, { 0xAA, i, count }, "ssfi area " .. i)
    types[#types + 1] = string.char(t)
    off = off + 14 + 16 + 16 + size
    bounds[off] = true
  end
  T.eq({ count, off, table.concat(types) }, { 22, #ssfi, "OOOOOOOAFFFFFFFFFFFFFC" }, "ssfi areas")
  local at = 0
  for i, a in ipairs(by.S) do
    at = at + #a.data
    T.eq(bounds[at], true, "S " .. i .. " ends at an ssfi area boundary")
    T.eq(#a.data <= 0x20800, true, "S " .. i .. " fits the RAM size")
    if i < #by.S then -- the next ssfi area would not have fitted
      local size = string.unpack("<I4", ssfi, at + 5)
      T.eq(#a.data + 46 + size > 0x20800, true, "S " .. i .. " is as large as it can be")
    end
  end
end)

T.case("ST's licence: 'SFIG', zeros, an ephemeral P-256 key, 32 + 16 bytes", function ()
  local lic = T.readfile(D .. "SFI_Global_License.bin")
  local info = license.parse(lic)
  T.eq(info.maker, "st", "maker")
  T.eq({ info.session, info.version, info.min_version }, { 0, 0, 0 }, "header words")
  T.eq(lic:sub(17, 24), ("\0"):rep(8), "reserved")
  -- bytes 24..87 are a point on P-256 (X||Y big-endian): checked by loading it as a key
  T.eq(license.on_curve(info.eph), true, "ephemeral key on P-256")
  T.raises("UNSUPPORTED", license.open, ("\1"):rep(32), lic)
end)

T.case("the option-byte CSV rows are the pack's: H5's twelve rows, refused for an H7", function ()
  local dir = T.tmpdir()
  T.writefile(dir .. "/fw.bin", ("\x5A"):rep(1024))
  local function build(devid)
    return image.build { devid = devid, key = KEY, nonce = NONCE, ob = D .. "Option_Bytes.csv",
      firmware = { { file = dir .. "/fw.bin", addr = 0x08000000 } }, out = dir .. "/ob.sfi" }
  end
  local img <close> = build(0x484)
  local c
  for _, a in ipairs(img:areas()) do if a.type == "C" then c = a end end
  T.eq(c.size, 12 * 4, "H5: 12 rows of the CSV")
  os.remove(dir .. "/ob.sfi")
  local e = T.raises("FORMAT", build, 0x450)
  local text = require("sfi.error").text(e)
  assert(text:find("row 1 is 'OPTSR_PRG', expected 'FOPTSR_PRG'", 1, true), text)
  T.eq(io.open(dir .. "/ob.sfi"), nil, "nothing written")
end)
