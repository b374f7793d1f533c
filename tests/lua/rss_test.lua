-- rss_test.lua: the simulated RSS, driven over the debug port exactly as the install flow does
-- it (licence, header and a part's areas to RAM, mailbox, system reset, result word).
local T = require "sfi.test"
local probe = require "sfi.probe"
local image = require "sfi.image"
local license = require "sfi.license"
local ob = require "sfi.ob"
local log = require "sfi.log"

log.configure { level = "error" }

local dir = T.tmpdir()
local KEY <const> = string.rep("\x5A", 16)
local NONCE <const> = "\1\2\3\4\5\6\7\8\9\10\11\12"
local IV16 <const> = NONCE .. "\0\0\0\0"

local firmware = require("fwgen").bytes

-- The 9-row option-byte CSV; rdp = "AA" keeps flash readable over debug afterwards.
local function obcsv(rdp)
  local path = dir .. "/ob_" .. rdp .. ".csv"
  T.writefile(path, table.concat({
    "FOPTSR_PRG,0x1026" .. rdp .. "D0", "FPRAR_PRG_A,0x000000FF", "FPRAR_PRG_B,0x000000FF",
    "FSCAR_PRG_A,0x000000FF", "FSCAR_PRG_B,0x000000FF", "FWPSN_PRG_A,0x000000FF",
    "FWPSN_PRG_B,0x000000FF", "FBOOT7_PRG,0x1FF00800", "RESERVED,0x10000810" }, "\n") .. "\n")
  return path
end

local n_img = 0
local function build(fw, opts)
  n_img = n_img + 1
  opts = opts or {}
  return image.build { devid = opts.devid or 0x450, key = { bytes = KEY }, nonce = { bytes = NONCE },
    ob = obcsv(opts.rdp or "AA"),
    hash = opts.hash, protocol = opts.protocol or 2, ram_size = opts.ram_size,
    firmware = { { data = fw, name = "fw.bin", addr = 0x08000000 } },
    out = dir .. "/img" .. n_img .. ".sfi" }
end

-- One part through the debug port; returns the RSS result word.
local function run_part(p, img, i, lic)
  local s, r = p.pack.sfi, p.pack.rss
  p:write(s.license_addr, lic)
  p:write(s.header_addr, img:header_bytes() .. img:part_bytes(i))
  p:write32(r.mailbox, r.magic)
  p:reset("sw")
  p:reconnect { connect = "hotplug" }
  return p:read32(r.result)
end

local function licence_for(p)
  local cert = p:read(p.pack.rss.cert, 136)
  return license.make_soft(license.parse_cert(cert).pub, KEY, IV16), cert
end

local function secure(p) ob.program(p, { SECURITY = 1 }) end

T.case("chip certificate: product ID, signed by the simulator CA, stable per UID", function ()
  local p <close> = probe.open { uri = "sim:stm32h753?uid=0102030405060708090A0B0C" }
  local cert = p:read(p.pack.rss.cert, 136)
  local c = license.parse_cert(cert)
  T.eq(c.product_id, "45002001")
  local _, capub = license.load_key(os.getenv("SFI_SOURCE_DIR") .. "/vendor/sim/ca-pub.pem", false)
  assert(license.verify_cert(cert, capub))
  -- the same chip (UID) in a later run has the same key, so a licence made from a certificate
  -- read today opens on it tomorrow; another chip has another key
  local q <close> = probe.open { uri = "sim:stm32h753?uid=0102030405060708090A0B0C" }
  T.eq(license.parse_cert(q:read(q.pack.rss.cert, 136)).pub, c.pub)
  local o <close> = probe.open { uri = "sim:stm32h753?uid=0102030405060708090A0BFF" }
  assert(license.parse_cert(o:read(o.pack.rss.cert, 136)).pub ~= c.pub, "two chips share a key")
end)

T.case("one part: flash equals the firmware, option bytes from the C area", function ()
  local fw = firmware(70000)
  local img = build(fw)
  local p <close> = probe.open { uri = "sim:stm32h753" }
  secure(p)
  local lic = licence_for(p)
  T.eq(#img:parts(), 1)
  T.eq(run_part(p, img, 1, lic), p.pack.rss.codes.ok)
  T.eq(p:read(0x08000000, #fw), fw)
  T.eq(p:rss_last(), "ok")
end)

T.case("split image: part_ok after part 1 (token in flash), ok after the last", function ()
  local fw = firmware(200000, 7)
  local img = build(fw, { ram_size = 0x1E000 })
  local parts = img:parts()
  assert(#parts >= 2, "expected a split image")
  local p <close> = probe.open { uri = "sim:stm32h753" }
  secure(p)
  local lic = licence_for(p)
  local codes = p.pack.rss.codes
  for i = 1, #parts do
    T.eq(run_part(p, img, i, lic), i < #parts and codes.part_ok or codes.ok, "part " .. i)
  end
  T.eq(p:read(0x08000000, #fw), fw)
end)

T.case("RDP level from the C area is applied: flash locked over debug", function ()
  local fw = firmware(4096, 3)
  local img = build(fw, { rdp = "BB" })
  local p <close> = probe.open { uri = "sim:stm32h753" }
  secure(p)
  T.eq(run_part(p, img, 1, (licence_for(p))), p.pack.rss.codes.ok)
  T.eq(ob.read(p).RDP, 0xBB)
  T.raises("LOCKED", p.read, p, 0x08000000, 4)
end)

T.case("a licence for another chip is rejected, flash untouched", function ()
  local img = build(firmware(4096, 4))
  local a <close> = probe.open { uri = "sim:stm32h753?uid=AAAAAAAAAAAAAAAAAAAAAAAA" }
  local lic_a = licence_for(a)
  local b <close> = probe.open { uri = "sim:stm32h753?uid=BBBBBBBBBBBBBBBBBBBBBBBB" }
  secure(b)
  T.eq(run_part(b, img, 1, lic_a), b.pack.rss.codes.license)
  T.eq(b:read(0x08000000, 16), string.rep("\xFF", 16))
  local code, why = b:rss_last()
  T.eq(code, "license")
  assert(why:find("licence rejected", 1, true), why)
end)

T.case("a tampered area is rejected naming the area", function ()
  local img = build(firmware(8192, 5))
  local p <close> = probe.open { uri = "sim:stm32h753" }
  secure(p)
  local lic = licence_for(p)
  local s, r = p.pack.sfi, p.pack.rss
  local bytes = img:part_bytes(1)
  local pos = 40 -- inside area 1's ciphertext (descriptor 14 + hash/tag)
  bytes = bytes:sub(1, pos - 1) .. string.char(bytes:byte(pos) ~ 1) .. bytes:sub(pos + 1)
  p:write(s.license_addr, lic)
  p:write(s.header_addr, img:header_bytes() .. bytes)
  p:write32(r.mailbox, r.magic)
  p:reset("sw")
  p:reconnect {}
  T.eq(p:read32(r.result), r.codes.area)
  local _, why = p:rss_last()
  assert(why:find("area 1", 1, true), why)
end)

T.case("H753 RSS rejects hashed images; H73x requires them", function ()
  local p <close> = probe.open { uri = "sim:stm32h753" }
  secure(p)
  T.eq(run_part(p, build(firmware(1024), { hash = true }), 1, (licence_for(p))), p.pack.rss.codes.hash)
  local q <close> = probe.open { uri = "sim:stm32h735" }
  secure(q)
  local unhashed = build(firmware(1024), { devid = 0x483 })
  T.eq(run_part(q, unhashed, 1, (licence_for(q))), q.pack.rss.codes.hash)
  local hashed = build(firmware(1024), { devid = 0x483, hash = true })
  T.eq(run_part(q, hashed, 1, (licence_for(q))), q.pack.rss.codes.ok)
end)

T.case("protocol 1 images install too; without SECURITY=1 the reset is a plain reset", function ()
  local fw = firmware(2048, 9)
  local img = build(fw, { protocol = 1 })
  local p <close> = probe.open { uri = "sim:stm32h753" }
  local lic = licence_for(p)
  local s, r = p.pack.sfi, p.pack.rss
  p:write(s.license_addr, lic)
  p:write(s.header_addr, img:header_bytes() .. img:part_bytes(1))
  p:write32(r.mailbox, r.magic)
  p:reset("sw")
  p:reconnect {}
  local _, why = p:rss_last()
  T.eq(why, "never ran")
  T.eq(p:read(0x08000000, 16), string.rep("\xFF", 16))
  secure(p)
  T.eq(run_part(p, img, 1, lic), r.codes.ok)
  T.eq(p:read(0x08000000, #fw), fw)
end)

T.case("debug port silent after RSS for N connects (knob)", function ()
  local img = build(firmware(1024, 11))
  local p <close> = probe.open { uri = "sim:stm32h753?unreachable_after_rss=2" }
  secure(p)
  local s, r = p.pack.sfi, p.pack.rss
  p:write(s.license_addr, (licence_for(p)))
  p:write(s.header_addr, img:header_bytes() .. img:part_bytes(1))
  p:write32(r.mailbox, r.magic)
  p:reset("sw")
  T.raises("NO_DEVICE", p.reconnect, p, {})
  T.raises("NO_DEVICE", p.reconnect, p, {})
  p:reconnect {}
  T.eq(p:read32(r.result), r.codes.ok)
end)
