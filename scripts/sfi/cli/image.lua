--- sfi.cli.image: `sfirun image build|info|verify|decrypt`. The build options are the ones
-- ST's TrustedPackageCreator users type (long and short forms); info prints like ST's
-- programmer. Exit codes: 0 success, 1 failure (bad tag), 2 usage or bad input.
local args = require "sfi.cli.args"
local errors = require "sfi.error"
local image = require "sfi.image"
local log = require "sfi.log"
local util = require "sfi.util"

local M = {}

local function is_num(s) return not s:find("%s") and util.parse_int(s, true) ~= nil end

-- The options of ST's STM32TrustedPackageCreator_CLI for SFI (AN5054 §2.5.1, UM2238), so a TPC
-- command line runs as written after `sfirun image build`; sfirun's own long forms too.
local BUILD = {
  { "sfi", "-sfi", "--sfi", help = "TPC's SFI mode word (accepted; image build is SFI)" },
  { "devid", "--devid", "-devid", "--deviceid", value = "ID", help = "device ID, e.g. 0x450" },
  { "firmware", "--firmware", "-fir", value = "FILE [ADDR]", multi = true, more = is_num,
    help = "firmware (bin needs ADDR; hex, srec, elf carry theirs); repeatable" },
  { "key", "--key", "-k", value = "FILE", help = "16-byte AES key file" },
  { "nonce", "--nonce", "-n", value = "FILE", help = "12-byte nonce file" },
  { "ver", "--ver", "-v", value = "N", help = "image version 0..255 (as in TPC; not verbose)" },
  { "ob", "--ob", "-ob", "--obfile", value = "FILE.csv", help = "option-byte CSV" },
  { "ramsize", "--ramsize", "-rs", value = "N", help = "RAM size per part (split above it)" },
  { "token", "--token", "-ct", value = "ADDR", more = is_num,
    help = "continuation-token address (a trailing 0 as TPC takes is accepted)" },
  { "hash", "--hash", "-hash", value = "0|1", help = "protocol-2 area hashes" },
  { "protocol", "--protocol", value = "1|2", help = "image protocol (default " .. image.PROTOCOL .. ")" },
  { "area", "--area", value = "TYPE ADDR FILE", multi = true, more = function () return true end,
    help = "an area made elsewhere (H, O, S, M, K, E), placed before the firmware" },
  { "outfile", "--outfile", "-o", value = "OUT.sfi", help = "output file (.sfi)" },
  -- TPC options sfirun does not build yet: named, so the error says so instead of "unknown"
  { "firx", "-firx", "--firmwarex", value = "FILE", multi = true, help = "(not supported)" },
  { "module", "-m", "--module", value = "FILE", multi = true, help = "(not supported)" },
  { "obkeys", "--ob-keys", "-obk", value = "FILE", multi = true, help = "(not supported)" },
  { "ssfi", "-ssfi", "--ssfi", value = "FILE", help = "(not supported)" },
  { "mcsv", "-mcsv", "--mcsv", value = "FILE", help = "(not supported)" },
}

-- What sfirun cannot build from those options yet, and what to do instead.
local UNSUPPORTED <const> = {
  firx = "sfirun does not build external-flash areas (-firx, SFIx) yet",
  module = "sfirun does not build module areas from .smi files (-m) yet; a module area made " ..
    "elsewhere can be given with --area M ADDR FILE",
  mcsv = "sfirun does not build module areas from a modules CSV (-mcsv) yet",
  obkeys = "sfirun does not build STM32H5 option-byte key areas (--ob-keys) yet; give each " ..
    "area's plaintext with --area O ADDR FILE",
  ssfi = "sfirun does not build STM32H5 secure manager areas (-ssfi) yet; give each area's " ..
    "plaintext with --area S 0 FILE",
}

local KEYS = {
  { "key", "--key", "-k", value = "FILE", help = "16-byte AES key file" },
  { "nonce", "--nonce", "-n", value = "FILE", help = "12-byte nonce file" },
  { "outdir", "--outdir", "-o", value = "DIR", help = "output directory (decrypt)" },
}

local function out(fmt, ...) io.stdout:write(string.format(fmt, ...), "\n") end

-- The key or nonce named by option `opt` (`--key`/`--nonce`): read from a file only. A missing
-- file is a usage error naming the option; the value given is never repeated (it may be a
-- key typed where a path belongs).
local function secret(path, n, what, opt)
  if not util.stat(path) then
    errors.raise("USAGE", nil, string.format("%s: no such file (the %s is read from a file of " ..
      "%d bytes; the value given is not shown)", opt, what, n))
  end
  return { bytes = image.secret(path, n, what) }
end

local function as_usage(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return err end
  if errors.is(err, "NOT_FOUND") then errors.raise("USAGE", err.op, err.msg) end
  error(err, 0)
end

-- "--area TYPE ADDR FILE": the parser gives TYPE and ADDR; FILE is the next positional.
local function areas_of(o, pos)
  local list = {}
  for _, a in ipairs(o.area or {}) do
    if type(a) ~= "table" or not pos[1] then
      errors.raise("USAGE", nil, "--area needs TYPE ADDR FILE")
    end
    local t = a[1]
    if not (#t == 1 and ("MKEHOS"):find(t, 1, true)) then
      errors.raise("USAGE", nil, "--area TYPE must be one of M K E H O S, got '" .. t .. "'")
    end
    list[#list + 1] = { type = t, addr = args.int(a[2], "--area address"), file = table.remove(pos, 1) }
  end
  return list
end

local function build(argv, first)
  -- "-v" is the image version here (TPC), not --verbose: BUILD takes it for --ver
  local o, pos = args.parse(argv, BUILD, "image build", first)
  args.setup_log(o)
  if o.help then out("usage: sfirun image build [options]\n%s", args.help(BUILD)); return 0 end
  for _, k in ipairs { "firx", "module", "mcsv", "obkeys", "ssfi" } do
    if o[k] then errors.raise("USAGE", nil, UNSUPPORTED[k]) end
  end
  local extra = areas_of(o, pos)
  if pos[1] then errors.raise("USAGE", nil, "unexpected argument '" .. pos[1] .. "'") end
  for _, k in ipairs { "key", "nonce", "outfile" } do
    if not o[k] then errors.raise("USAGE", nil, "--" .. k .. " is required") end
  end
  if not o.firmware then errors.raise("USAGE", nil, "--firmware is required") end
  if not o.outfile:match("%.sfi$") then
    errors.raise("USAGE", nil, "output file '" .. o.outfile .. "' must end with .sfi")
  end
  local fw = {}
  for _, f in ipairs(o.firmware) do
    if type(f) == "table" then
      fw[#fw + 1] = { file = f[1], addr = args.int(f[2], "firmware address") }
    else
      fw[#fw + 1] = { file = f }
    end
  end
  local token = o.token
  if type(token) == "table" then token = token[1] end
  local ver = o.ver and args.int(o.ver, "--ver")
  if ver and (ver < 0 or ver > 255) then errors.raise("USAGE", nil, "--ver must be 0..255") end
  local hash = o.hash and args.int(o.hash, "--hash")
  if hash and hash ~= 0 and hash ~= 1 then errors.raise("USAGE", nil, "--hash must be 0 or 1") end
  local img <close> = as_usage(image.build, {
    devid = o.devid and args.int(o.devid, "--devid"),
    firmware = fw, key = secret(o.key, 16, "key", "--key"),
    nonce = secret(o.nonce, 12, "nonce", "--nonce"), version = ver or 0, ob = o.ob,
    ram_size = o.ramsize and args.int(o.ramsize, "--ramsize"),
    token = token and args.int(token, "--token"),
    hash = hash == 1, protocol = o.protocol and args.int(o.protocol, "--protocol"),
    areas = extra, out = o.outfile,
  })
  local info = img:info()
  out("SFI file %s generated: %d bytes, %d areas, %d part(s)", o.outfile, info.size, info.areas,
    #img:parts())
  return 0
end

local function info(argv, first)
  local o, pos = args.parse(argv, {}, "image info", first)
  args.setup_log(o)
  if o.help then out("usage: sfirun image info FILE.sfi [--json]\n%s", args.help({})); return 0 end
  if not pos[1] then errors.raise("USAGE", nil, "image info needs a file") end
  local img <close> = as_usage(image.load, pos[1])
  local h = img:info()
  local areas = img:areas()
  local parts = img:parts()
  if o.json then
    log.event("image", { file = pos[1], protocol = h.protocol, version = h.version,
      areas = h.areas, size = h.size, parts = #parts, hashed = h.hashed, legacy = h.legacy })
    for _, a in ipairs(areas) do
      log.event("area", { index = a.index, type = a.type, what = a.what, size = a.size,
        addr = a.addr, hash = a.hash })
    end
    for i, p in ipairs(parts) do
      log.event("part", { part = i, first = p.first, last = p.last, bytes = p.bytes })
    end
    return 0
  end
  out("SFI file path : %s", pos[1])
  out("SFI header information :")
  out("SFI protocol version : %d", h.protocol)
  out("SFI total number of areas : %d", h.areas)
  out("SFI image version : %d", h.version)
  out("SFI Areas information :")
  for _, a in ipairs(areas) do
    out("Parsing Area %d/%d :", a.index, h.areas)
    out("Area type : %s", a.type)
    out("Area size : %d", a.size)
    out("Area destination address : 0x%X", a.addr)
    if a.hash then out("Area hash : %s", a.hash) end
  end
  out("SFI parts : %d", #parts)
  for i, p in ipairs(parts) do
    out("Part %d : areas %d..%d, %d bytes", i, p.first, p.last, p.bytes)
  end
  out("Area hashes : %s", h.hashed and "yes (16 bytes per area)" or "no")
  if h.legacy then
    log.warn("%s was written by an earlier sfirun: its areas carry 0x97 in the version byte " ..
      "(its own hash marker), which ST's tools never write; rebuild it with this sfirun", pos[1])
  end
  return 0
end

local function keyed(argv, first, cmd)
  local o, pos = args.parse(argv, KEYS, "image " .. cmd, first)
  args.setup_log(o)
  if o.help then
    out("usage: sfirun image %s FILE.sfi --key FILE --nonce FILE%s\n%s", cmd,
      cmd == "decrypt" and " -o DIR" or "", args.help(KEYS))
    return nil
  end
  if not pos[1] then errors.raise("USAGE", nil, "image " .. cmd .. " needs a file") end
  if not o.key or not o.nonce then errors.raise("USAGE", nil, "--key and --nonce are required") end
  local key = secret(o.key, 16, "key", "--key")
  local nonce = secret(o.nonce, 12, "nonce", "--nonce")
  return o, pos[1], as_usage(image.load, pos[1]), key, nonce
end

local function verify(argv, first)
  local o, file, img, key, nonce = keyed(argv, first, "verify")
  if not o then return 0 end -- --help
  local ok, why = img:verify(key, nonce)
  img:close()
  if not ok then
    log.error("%s: verification failed: %s", file, why)
    return 1
  end
  out("%s: header and all areas verified", file)
  return 0
end

local function decrypt(argv, first)
  local o, file, img, key, nonce = keyed(argv, first, "decrypt")
  if not o then return 0 end -- --help
  if not o.outdir then errors.raise("USAGE", nil, "-o DIR is required") end
  local segs = img:decrypt(key, nonce)
  img:close()
  if util.stat(o.outdir) ~= "dir" then
    util.check_output(o.outdir, "image decrypt -o")
    require("sfi.core").mkdir(o.outdir)
  end
  local names = {}
  for _, s in ipairs(segs) do
    local name = string.format("%s/area%02d_%s_%08X.bin", o.outdir, s.index, s.type, s.addr)
    local f = io.open(name, "rb")
    if f then
      f:close()
      errors.raise("USAGE", nil, "'" .. name .. "' exists: not overwritten")
    end
    names[#names + 1] = name
  end
  for i, s in ipairs(segs) do
    image.write(names[i], s.data, true)
    out("%s: %d bytes", names[i], #s.data)
  end
  log.info("%s: %d areas decrypted into %s", file, #segs, o.outdir)
  return 0
end

--- M.run(argv, first) -> exit code. Raises USAGE / FORMAT (exit 2).
function M.run(argv, first)
  local sub = argv[first]
  if sub == "build" then return build(argv, first + 1)
  elseif sub == "info" then return info(argv, first + 1)
  elseif sub == "verify" then return verify(argv, first + 1)
  elseif sub == "decrypt" then return decrypt(argv, first + 1)
  end
  if sub == nil or sub == "--help" or sub == "-h" then
    out("usage: sfirun image build|info|verify|decrypt ...\nbuild options:\n%s", args.help(BUILD))
    return sub and 0 or 2
  end
  errors.raise("USAGE", nil, "unknown image command '" .. tostring(sub) .. "' (build, info, verify, decrypt)")
end

return M
