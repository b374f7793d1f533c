--- sfi.cli.trace: `sfirun trace FILE` lists the debug operations in an ST-LINK traffic capture
-- (stlink-server TCP or ST-LINK USB; pcap or pcapng), one line each or one JSON object each;
-- `sfirun trace diff A B` compares two captures as operation sequences. Exit codes: 0 (diff:
-- no divergence), 1 (diff: divergences), 2 bad input (missing file, not a capture, unknown
-- link type, damaged file, no ST-LINK traffic).
local args = require "sfi.cli.args"
local errors = require "sfi.error"
local log = require "sfi.log"
local probe = require "sfi.probe"
local trace = require "sfi.trace"
local util = require "sfi.util"

local M = {}

local SPEC <const> = {
  { "pack", "--pack", value = "PART", help = "name addresses with this part's device pack " ..
    "(default: from the DBGMCU_IDCODE read in the capture)" },
  { "port", "--port", value = "N", help = "stlink-server TCP port (default " .. probe.STLINK_TCP_PORT .. ")" },
  { "all", "--all", help = "look for stlink-server traffic on every TCP port" },
  { "data", "--data", help = "diff: compare bulk transfers by content too (sha256)" },
}

local function usage()
  return "usage: sfirun trace FILE [--json] [--pack PART] [--port N] [--all]\n" ..
    "       sfirun trace diff A B [--data] [--json] [--pack PART] [--port N] [--all]\n\n" ..
    "Decodes ST-LINK traffic captured with tcpdump, Wireshark/dumpcap (stlink-server on TCP,\n" ..
    "usbmon or USBPcap for USB) or recorded by sfirun (probe URI ?record=FILE) into debug\n" ..
    "operations, named from the device packs. diff shows where two sessions first differ\n" ..
    "(timing, polling repeats and read values ignored; bulk transfers by length unless --data).\n\n" ..
    "options:\n" .. args.help(SPEC) ..
    "\n\nexit codes: 0 ok (diff: same), 1 diff: divergences, 2 bad input or no ST-LINK traffic"
end

-- Errors of the capture file are bad input (exit 2), said in the reader's own words.
local function bad_input(err)
  if errors.is(err) and (err.code == "NOT_FOUND" or err.code == "ACCESS" or err.code == "IO" or
      err.code == "FORMAT") then
    local msg = (err.detail and err.detail ~= "") and err.detail or err.msg
    errors.raise(err.code == "FORMAT" and "FORMAT" or "USAGE", nil, msg)
  end
  error(err, 0)
end

local function reader_opts(opts)
  local o = { all = opts.all ~= nil, data = opts.data ~= nil }
  if opts.port then
    o.port = args.int(opts.port, "--port")
    if o.port < 1 or o.port > 65535 then errors.raise("USAGE", nil, "--port must be 1..65535") end
  end
  if opts.pack then
    local ok, e = pcall(require("sfi.device").find_part, opts.pack)
    if not ok then errors.raise("USAGE", nil, (errors.is(e) and e.msg) or tostring(e)) end
    o.pack = opts.pack
  end
  return o
end

local function nothing_found(file, s)
  local held = {}
  if s.tcp_segments > 0 then
    local ports = {}
    for i, p in ipairs(s.ports) do ports[i] = tostring(p) end
    held[#held + 1] = string.format("%d TCP segment(s)%s", s.tcp_segments,
      #ports > 0 and (" on port(s) " .. table.concat(ports, ", ")) or "")
  end
  if s.usb_urbs > 0 then
    held[#held + 1] = string.format("%d USB transfer event(s) from %d device(s)%s", s.usb_urbs,
      s.usb_devices, #s.usb_ids > 0 and (" (" .. table.concat(s.usb_ids, ", ") .. ")") or "")
  end
  if s.other_ip > 0 then held[#held + 1] = string.format("%d other IP packet(s)", s.other_ip) end
  if s.non_ip > 0 then held[#held + 1] = string.format("%d non-IP frame(s)", s.non_ip) end
  local hint = s.tcp_segments > 0 and s.usb_urbs == 0 and
    "; stlink-server listens on " .. probe.STLINK_TCP_PORT .. ": try --port N or --all" or ""
  errors.raise("FORMAT", nil, string.format("%s: no ST-LINK traffic found: %d frame(s) of %s%s%s",
    file, s.frames, s.link, #held > 0 and (": " .. table.concat(held, ", ")) or "", hint))
end

local function list(file, opts)
  local ro = reader_opts(opts)
  local ok, iter, stats = pcall(trace.reader, file, ro)
  if not ok then bad_input(iter) end
  local n, json = 0, log.json()
  local ok2, err = pcall(function ()
    for o in iter do
      if o.op ~= "note" then n = n + 1 end
      if json then
        io.stdout:write(util.json(trace.json_op(o)), "\n")
      else
        io.stdout:write(trace.format(o), "\n")
      end
    end
  end)
  io.stdout:flush()
  if not ok2 then bad_input(err) end
  local s = stats()
  if n == 0 then nothing_found(file, s) end
  if not json then
    io.stdout:write(string.format("-- %d operation(s) from %d ST-LINK command(s)/request(s); %s%s%s\n",
      n, s.records, s.link, s.pack and (", device pack " .. s.pack.family) or "",
      s.gaps > 0 and string.format(", %d gap(s)", s.gaps) or ""))
  end
  return 0
end

local function diff(a, b, opts)
  local ro = reader_opts(opts)
  local ok, la = pcall(trace.ops, a, ro)
  if not ok then bad_input(la) end
  local lb
  ok, lb = pcall(trace.ops, b, ro)
  if not ok then bad_input(lb) end
  if #la == 0 then nothing_found(a, { frames = 0, link = "?", tcp_segments = 0, usb_urbs = 0,
    other_ip = 0, non_ip = 0, ports = {}, usb_ids = {} }) end
  if #lb == 0 then nothing_found(b, { frames = 0, link = "?", tcp_segments = 0, usb_urbs = 0,
    other_ip = 0, non_ip = 0, ports = {}, usb_ids = {} }) end
  local ds = trace.diff(la, lb)
  if log.json() then
    for _, d in ipairs(ds) do
      local ea, eb = {}, {}
      for i, o in ipairs(d.a) do ea[i] = o.key end
      for i, o in ipairs(d.b) do eb[i] = o.key end
      io.stdout:write(util.json { event = "divergence", a_index = d.ia, b_index = d.ib,
        a_frame = d.a[1] and d.a[1].frame, b_frame = d.b[1] and d.b[1].frame,
        a_count = d.na, b_count = d.nb, a = table.concat(ea, "; "), b = table.concat(eb, "; ") }, "\n")
    end
    io.stdout:write(util.json { event = "summary", a_ops = #la, b_ops = #lb, divergences = #ds }, "\n")
    return #ds > 0 and 1 or 0
  end
  if #ds == 0 then
    io.stdout:write(string.format("no divergence: %d operations each (timing, repeats and read values " ..
      "ignored%s)\n", #la, opts.data and "" or "; bulk transfers by length"))
    return 0
  end
  for n, d in ipairs(ds) do
    io.stdout:write(string.format("divergence %d: operation %d of A, %d of B\n", n, d.ia, d.ib))
    for _, o in ipairs(d.context) do io.stdout:write("    ", trace.format(o), "\n") end
    for _, o in ipairs(d.a) do io.stdout:write("  A ", trace.format(o), "\n") end
    if d.na > #d.a then io.stdout:write(string.format("  A ... %d more\n", d.na - #d.a)) end
    if d.na == 0 then io.stdout:write("  A (nothing)\n") end
    for _, o in ipairs(d.b) do io.stdout:write("  B ", trace.format(o), "\n") end
    if d.nb > #d.b then io.stdout:write(string.format("  B ... %d more\n", d.nb - #d.b)) end
    if d.nb == 0 then io.stdout:write("  B (nothing)\n") end
  end
  io.stdout:write(string.format("%d divergence(s) shown; A has %d operations, B %d\n", #ds, #la, #lb))
  return 1
end

--- M.run(argv, first) -> exit code. Raises USAGE / FORMAT (exit 2).
function M.run(argv, first)
  local opts, pos = args.parse(argv, SPEC, "trace", first)
  args.setup_log(opts)
  if opts.help then
    io.stdout:write(usage(), "\n")
    return 0
  end
  if pos[1] == "diff" then
    if not (pos[2] and pos[3]) or pos[4] then errors.raise("USAGE", nil, "trace diff needs two captures") end
    return diff(pos[2], pos[3], opts)
  end
  if not pos[1] or pos[2] then errors.raise("USAGE", nil, "trace needs one capture file (or: trace diff A B)") end
  return list(pos[1], opts)
end

return M
