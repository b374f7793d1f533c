-- image_test.lua: sfi.image round trips (build -> info -> verify -> decrypt) for every input
-- format, both protocols, hash on and off, split and unsplit; ST's own file; bad inputs.
local T = require "sfi.test"
local image = require "sfi.image"
local gen = require "fwgen"

local KEY = "K0123456789abcdeF"
KEY = KEY:sub(1, 16)
local NONCE = "N0123456789a"

local segs = {
  { addr = 0x08000000, data = gen.bytes(5000, 1) },
  { addr = 0x08020000, data = gen.bytes(3000, 2) },
}

local function files(dir)
  return {
    bin = { { file = dir .. "/a.bin", addr = segs[1].addr }, { file = dir .. "/b.bin", addr = segs[2].addr } },
    hex = { { file = dir .. "/fw.hex" } },
    srec = { { file = dir .. "/fw.srec" } },
    elf = { { file = dir .. "/fw.elf" } },
  }, function ()
    T.writefile(dir .. "/a.bin", segs[1].data)
    T.writefile(dir .. "/b.bin", segs[2].data)
    T.writefile(dir .. "/fw.hex", gen.ihex(segs))
    T.writefile(dir .. "/fw.srec", gen.srec(segs))
    T.writefile(dir .. "/fw.elf", gen.elf(segs))
    T.writefile(dir .. "/ob.csv", gen.OB_CSV)
  end
end

-- joins the decrypted F areas back into {addr -> data} runs
local function joined(areas)
  local out, cur = {}, nil
  for _, a in ipairs(areas) do
    if a.type == "F" then
      if cur and cur.addr + #cur.data == a.addr then cur.data = cur.data .. a.data
      else cur = { addr = a.addr, data = a.data }; out[#out + 1] = cur end
    end
  end
  return out
end

for _, fmt in ipairs { "bin", "hex", "srec", "elf" } do
  for _, protocol in ipairs { 1, 2 } do
    for _, hash in ipairs(protocol == 2 and { false, true } or { false }) do
      for _, ram in ipairs { false, 4096 } do
        local name = string.format("%s protocol %d hash %s %s", fmt, protocol, hash,
          ram and "split" or "unsplit")
        T.case("round trip " .. name, function ()
          local dir = T.tmpdir()
          local fw, write = files(dir)
          write()
          local out = dir .. "/out.sfi"
          local img <close> = image.build { devid = 0x450, key = { bytes = KEY }, nonce = { bytes = NONCE },
            version = 3, ob = dir .. "/ob.csv", hash = hash, protocol = protocol,
            ram_size = ram or nil, token = 0x081FF000, firmware = fw[fmt], out = out }
          local info = img:info()
          T.eq(info.protocol, protocol, "protocol")
          T.eq(info.version, 3, "version")
          T.eq(info.size, #T.readfile(out), "size")
          local areas = img:areas()
          T.eq(areas[#areas].type, "C", "C area last")
          T.eq(areas[1].hash ~= nil, hash, "hash present")
          local parts = img:parts(ram or nil)
          if ram then
            T.eq(#parts > 1, true, "split into parts")
            for i, p in ipairs(parts) do
              T.eq(p.fits, true, "part " .. i .. " fits")
              T.eq(#img:part_bytes(i), p.bytes, "part bytes")
            end
          else
            T.eq(#parts, 1, "one part")
            T.eq(#img:part_bytes(1) + 28, info.size, "part 1 is all but the header")
          end
          T.eq(img:verify({ bytes = KEY }, { bytes = NONCE }), true, "verify")
          local ok, why = img:verify({ bytes = ("x"):rep(16) }, { bytes = NONCE })
          T.eq(ok, false, "wrong key fails")
          T.eq(why:match("header") ~= nil, true, "reason names the header")
          local dec = img:decrypt({ bytes = KEY }, { bytes = NONCE })
          local got = joined(dec)
          T.eq(#got, 2, "two segments back")
          for i = 1, 2 do -- each segment comes back 0xFF-filled to a multiple of 16 (as TPC does)
            local want = segs[i].data
            T.eq(got[i].addr, segs[i].addr, "addr " .. i)
            T.eq(#got[i].data, (#want + 15) // 16 * 16, "length " .. i)
            T.eq(got[i].data == want .. ("\xFF"):rep(#got[i].data - #want), true, "data " .. i)
          end
          T.eq(#dec[#dec].data, 36, "C area 36 bytes")
          T.eq(string.unpack("<I4", dec[#dec].data), 0x1026AAD0, "FOPTSR_PRG")
        end)
      end
    end
  end
end

T.case("ST's 2017 image: three areas, exact end", function ()
  local img <close> = image.load(os.getenv("SFI_SOURCE_DIR") .. "/tests/data/st-tpc-2017/data.sfi")
  -- the image version is each area's version byte: 0x17 in ST's 2017 samples
  T.eq(img:info(), { protocol = 1, version = 0x17, areas = 3, size = 10882, hashed = false,
    legacy = false }, "info")
  local a = img:areas()
  T.eq({ a[1].type, a[1].size, a[1].addr }, { "F", 844, 0x08000000 }, "area 1")
  T.eq({ a[2].type, a[2].size, a[2].addr }, { "F", 9884, 0x08030000 }, "area 2")
  T.eq({ a[3].type, a[3].size, a[3].addr }, { "C", 36, 0 }, "area 3")
  T.eq(a[3].offset + a[3].length, 10882, "ends at the file end")
  local ok = img:verify({ bytes = KEY }, { bytes = NONCE })
  T.eq(ok, false, "unknown key does not verify")
end)

T.case("ST's split rule: 0x1E000 RAM gives F 122816, P, R, F 59776, C", function ()
  local dir = T.tmpdir()
  T.writefile(dir .. "/fw.bin", gen.bytes(182592, 9))
  T.writefile(dir .. "/ob.csv", gen.OB_CSV)
  local img <close> = image.build { devid = 0x450, ram_size = 0x1E000, token = 0x081FF000,
    key = { bytes = KEY }, nonce = { bytes = NONCE }, ob = dir .. "/ob.csv", hash = true, protocol = 2,
    firmware = { { file = dir .. "/fw.bin", addr = 0x08000000 } }, out = dir .. "/o.sfi" }
  local got = {}
  for _, a in ipairs(img:areas()) do got[#got + 1] = { a.type, a.size, a.addr } end
  T.eq(got, { { "F", 122816, 0x08000000 }, { "P", 32, 0x081FF000 }, { "R", 32, 0x081FF000 },
    { "F", 59776, 0x0801DFC0 }, { "C", 36, 0 } }, "areas")
end)

T.case("bad inputs raise FORMAT / USAGE naming the problem", function ()
  local dir = T.tmpdir()
  T.writefile(dir .. "/a.bin", gen.bytes(64, 3))
  T.writefile(dir .. "/bad.csv", gen.OB_CSV:gsub("FPRAR_PRG_B", "FPRAR_PRG_X"))
  local base = { devid = 0x450, key = { bytes = KEY }, nonce = { bytes = NONCE }, out = dir .. "/o.sfi" }
  local function with(t) local o = {} for k, v in pairs(base) do o[k] = v end
    for k, v in pairs(t) do o[k] = v end return o end
  local e = T.raises("FORMAT", image.build, with { firmware = {
    { file = dir .. "/a.bin", addr = 0x08000000 }, { file = dir .. "/a.bin", addr = 0x08000010 } } })
  T.eq(tostring(e):match("overlaps") ~= nil, true, "overlap: " .. tostring(e))
  e = T.raises("FORMAT", image.build, with { firmware = { { file = dir .. "/a.bin", addr = 0x20000000 } } })
  T.eq(tostring(e):match("outside flash") ~= nil, true, "outside flash")
  e = T.raises("FORMAT", image.build, with { ob = dir .. "/bad.csv",
    firmware = { { file = dir .. "/a.bin", addr = 0x08000000 } } })
  T.eq(tostring(e):match("row 3") ~= nil, true, "csv row named: " .. tostring(e))
  T.raises("USAGE", image.build,
    with { out = dir .. "/o.bin", firmware = { { file = dir .. "/a.bin", addr = 0x08000000 } } })
  T.eq(T.readfile(dir .. "/o.sfi"), nil, "no output file left")
  T.writefile(dir .. "/junk.sfi", "SFIMAGIC\1\0\5\0" .. ("\0"):rep(40))
  e = T.raises("FORMAT", image.load, dir .. "/junk.sfi")
  T.eq(tostring(e):match("junk.sfi") ~= nil, true, "file named")
end)

T.case("closed image raises on use", function ()
  local img = image.load(os.getenv("SFI_SOURCE_DIR") .. "/tests/data/st-tpc-2017/data.sfi")
  img:close()
  img:close()
  T.raises("%closed sfi.image", function () return img:info() end)
end)
