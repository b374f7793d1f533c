--- fwgen: test helper writing firmware files in the formats the image builder reads
-- (Intel HEX, S-record, ELF32 little-endian), from {addr, data} segments.
local M = {}

local function hexbytes(s) return (s:gsub(".", function (c) return string.format("%02X", c:byte()) end)) end

--- M.ihex(segs) -> text with type 04 records and 16-byte data records.
function M.ihex(segs)
  local out = {}
  local function rec(addr, typ, data)
    local b = string.char(#data, (addr >> 8) & 0xFF, addr & 0xFF, typ) .. data
    local sum = 0
    for i = 1, #b do sum = sum + b:byte(i) end
    out[#out + 1] = ":" .. hexbytes(b) .. string.format("%02X", (-sum) & 0xFF)
  end
  for _, s in ipairs(segs) do
    local hi = -1
    for off = 0, #s.data - 1, 16 do
      local a = s.addr + off
      if (a >> 16) ~= hi then hi = a >> 16; rec(0, 4, string.char(hi >> 8, hi & 0xFF)) end
      rec(a & 0xFFFF, 0, s.data:sub(off + 1, off + 16))
    end
  end
  rec(0, 1, "")
  return table.concat(out, "\r\n") .. "\r\n"
end

--- M.srec(segs) -> text with S0, S3 data records and S7.
function M.srec(segs)
  local out = {}
  local function rec(t, addr, alen, data)
    local a = string.pack(">I4", addr):sub(5 - alen)
    local b = string.char(alen + #data + 1) .. a .. data
    local sum = 0
    for i = 1, #b do sum = sum + b:byte(i) end
    out[#out + 1] = "S" .. t .. hexbytes(b) .. string.format("%02X", (~sum) & 0xFF)
  end
  rec("0", 0, 2, "test")
  for _, s in ipairs(segs) do
    for off = 0, #s.data - 1, 32 do rec("3", s.addr + off, 4, s.data:sub(off + 1, off + 32)) end
  end
  rec("7", 0x08000000, 4, "")
  return table.concat(out, "\n") .. "\n"
end

--- M.elf(segs) -> ELF32 LE ARM executable with one PT_LOAD per segment (vaddr differs from
-- paddr, as for initialised data) plus an empty PT_LOAD (bss) that must be skipped.
function M.elf(segs)
  local phnum = #segs + 1
  local phoff = 52
  local dataoff = phoff + 32 * phnum
  local eh = "\x7fELF" .. string.char(1, 1, 1, 0) .. string.rep("\0", 8) ..
    string.pack("<I2I2I4I4I4I4I4I2I2I2I2I2I2", 2, 40, 1, segs[1].addr, phoff, 0, 0x05000200,
      52, 32, phnum, 40, 0, 0)
  local ph, body, off = {}, {}, dataoff
  for _, s in ipairs(segs) do
    ph[#ph + 1] = string.pack("<I4I4I4I4I4I4I4I4", 1, off, 0x20000000 + off, s.addr, #s.data,
      #s.data, 5, 4)
    body[#body + 1] = s.data
    off = off + #s.data
  end
  ph[#ph + 1] = string.pack("<I4I4I4I4I4I4I4I4", 1, off, 0x24000000, 0x24000000, 0, 4096, 6, 4)
  return eh .. table.concat(ph) .. table.concat(body)
end

--- M.bytes(n, seed) -> n pseudo-random bytes.
function M.bytes(n, seed)
  local t, x = {}, seed or 1
  for i = 1, n do
    x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    t[i] = string.char((x >> 16) & 0xFF)
  end
  return table.concat(t)
end

M.OB_CSV = table.concat({
  "FOPTSR_PRG,0x1026AAD0", "FPRAR_PRG_A,0x81000200", "FPRAR_PRG_B,0x81000200",
  "FSCAR_PRG_A,0x81000200", "FSCAR_PRG_B,0x81000200", "FWPSN_PRG_A,0xFFFFFFFF",
  "FWPSN_PRG_B,0xFFFFFFFF", "FBOOT7_PRG,0x24000800", "RESERVED,0x10000810" }, "\n") .. "\n"

--- M.dev_image(dir, n, seed) -> firmware bytes: writes dir/fw.bin (n pseudo-random bytes),
-- dir/key.bin and dir/nonce.bin (the development key and nonce a recipe takes with
-- --set key=/nonce=) and builds dir/fw.sfi from them with $SFIRUN: an H753 image (0x450) at
-- 0x08000000, protocol 2 without hash, split at 0x1E000 bytes of RAM. Raises if the build fails.
function M.dev_image(dir, n, seed)
  local T = require "sfi.test"
  local function q(x) return "'" .. tostring(x):gsub("'", "'\\''") .. "'" end
  local fw = M.bytes(n, seed)
  T.writefile(dir .. "/fw.bin", fw)
  T.writefile(dir .. "/key.bin", string.rep("\x42", 16))
  T.writefile(dir .. "/nonce.bin", string.rep("\x24", 12))
  local code, out = T.sh(string.format("%s image build --devid 0x450 --firmware %s 0x08000000 " ..
    "--key %s --nonce %s --ramsize 0x1E000 --hash 0 -o %s", assert(os.getenv("SFIRUN")),
    q(dir .. "/fw.bin"), q(dir .. "/key.bin"), q(dir .. "/nonce.bin"), q(dir .. "/fw.sfi")))
  assert(code == 0, out)
  return fw
end

return M
