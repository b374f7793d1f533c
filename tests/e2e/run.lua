-- tests/e2e/run.lua CASE.lua: runs one declarative end-to-end case (curl tests/data style).
-- A case names the recipe, the simulated chip and its fault knobs, how the image is built,
-- where the licence comes from, the runs to make (a rerun after a failure is a second run),
-- and what a user would check afterwards: exit code, error code and failing step, the final
-- option bytes, the flash content, how many licences the HSM counter lost, log lines.
--
-- case = {
--   recipe = "h753", chip = "stm32h753", knobs = {...},
--   image = {devid=0x450, size=N, hash=false, protocol=2, ram_size=0x1E000, rdp="AA", tamper=false,
--            vectors = {sp, pc} (the firmware starts with this vector table),
--            areas = { {type, addr, size} } (more areas, given with --area)},
--   licence = "hsm" | "keyfile", max = 5 (HSM licences),
--   set = {k = v} (recipe params), runs = { {knobs=, set=, recipe=, interrupt_ms=, expect=} ... }
--   | expect = {...} (a run's recipe "recover/..." gets no image, licence or verify),
--   final = {ob = {NAME = v}, flash = "firmware"|"erased", licences_used = n, journal_unknown = n,
--            files = { {dir=, count=, contains=} }, journal_fields = {name = "text"}},
--   mkdirs = {"sub"} (made in the case's directory; "{dir}" in set values is that directory),
-- }
-- expect = {exit = 0|1|2, code = "TARGET", step = "part 1", fact = {licence = "reused"},
--           output = {"plain text that must appear"...}, no_output = {...}}
local T = require "sfi.test"
local softhsm = require "softhsm"
local probe = require "sfi.probe"
local ob = require "sfi.ob"
local log = require "sfi.log"

log.configure { level = "error" }

local SFIRUN = assert(os.getenv("SFIRUN"), "SFIRUN not set")
local SRC = os.getenv("SFI_SOURCE_DIR") or "."
local case_path = assert(arg[1], "usage: run.lua CASE.lua")
local C = assert(dofile(case_path))

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function firmware(n) return require("fwgen").bytes(n, 12345) end

local function json_events(out)
  local ev = {}
  for line in out:gmatch("[^\n]+") do
    if line:sub(1, 1) == "{" then
      local e = { line = line }
      for k, v in line:gmatch('"([%w_]+)":"([^"]*)"') do e[k] = v end
      for k, v in line:gmatch('"([%w_]+)":(%-?%d+)') do e[k] = math.tointeger(tonumber(v)) end
      ev[#ev + 1] = e
    end
  end
  return ev
end

local dir = T.tmpdir()
local img = C.image or {}
local fw = firmware(img.size or 150000)
if img.vectors then -- a plausible vector table: initial SP, reset handler (Thumb)
  fw = string.pack("<I4I4", img.vectors[1], img.vectors[2]) .. fw:sub(9)
end
for _, d in ipairs(C.mkdirs or {}) do assert(os.execute("mkdir -p " .. dir .. "/" .. d)) end
T.writefile(dir .. "/fw.bin", fw)
T.writefile(dir .. "/key.bin", "\x2b\x7e\x15\x16\x28\xae\xd2\xa6\xab\xf7\x15\x88\x09\xcf\x4f\x3c")
T.writefile(dir .. "/nonce.bin", "\xca\xfe\xba\xbe\xfa\xce\xdb\xad\xde\xca\xf8\x88")
T.writefile(dir .. "/ob.csv", table.concat({
  "FOPTSR_PRG,0x1BFE" .. (img.rdp or "AA") .. "F0", "FPRAR_PRG_A,0x000000FF", "FPRAR_PRG_B,0x000000FF",
  "FSCAR_PRG_A,0x000000FF", "FSCAR_PRG_B,0x000000FF", "FWPSN_PRG_A,0x000000FF",
  "FWPSN_PRG_B,0x000000FF", "FBOOT7_PRG,0x1FF00800", "RESERVED,0x10000810" }, "\n") .. "\n")

local state = dir .. "/chip.state"
local env = "SFIRUN_STATE_DIR=" .. q(dir .. "/state") .. " "
local licence_args
local tok

T.case("set-up: image and licence source", function ()
  local more = {}
  for i, a in ipairs(img.areas or {}) do
    local f = string.format("%s/area%d.bin", dir, i)
    T.writefile(f, firmware(a[3]))
    more[#more + 1] = string.format("--area %s 0x%X %s", a[1], a[2], q(f))
  end
  local code, out = T.sh(string.format("%s image build --devid 0x%X --firmware %s 0x08000000 --key %s " ..
    "--nonce %s --ob %s --hash %d --protocol %d %s %s -o %s", SFIRUN, img.devid or 0x450, q(dir .. "/fw.bin"),
    q(dir .. "/key.bin"), q(dir .. "/nonce.bin"), q(dir .. "/ob.csv"), img.hash and 1 or 0,
    img.protocol or 2, img.ram_size and string.format("--ramsize 0x%X", img.ram_size) or "",
    table.concat(more, " "), q(dir .. "/fw.sfi")))
  assert(code == 0, out)
  if img.tamper then
    local b = T.readfile(dir .. "/fw.sfi")
    local at = img.tamper
    T.writefile(dir .. "/fw.sfi", b:sub(1, at - 1) .. string.char(b:byte(at) ~ 0x40) .. b:sub(at + 1))
  end
  if (C.licence or "hsm") == "hsm" then
    tok = softhsm.token("e2e")
    env = env .. tok.env .. " "
    code, out = T.sh(string.format("%s%s hsm provision --hsm %s --key %s --nonce %s --fwid E2E-1 --max %d " ..
      "--ca %s --journal %s", env, SFIRUN, q(tok.uri), q(dir .. "/key.bin"), q(dir .. "/nonce.bin"),
      C.max or 5, q(SRC .. "/vendor/sim/ca-pub.pem"), q(dir .. "/journal.sqlite")))
    assert(code == 0, out)
    licence_args = "--hsm " .. q(tok.uri)
  else
    licence_args = "--set key=" .. q(dir .. "/key.bin") .. " --set nonce=" .. q(dir .. "/nonce.bin")
  end
end)

local function uri(knobs)
  local parts = { "state=" .. state }
  local names = {}
  for k in pairs(knobs or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. tostring(knobs[k]) end
  return "sim:" .. (C.chip or "stm32h753") .. "?" .. table.concat(parts, "&")
end

local runs = C.runs or { { expect = C.expect } }
for n, run in ipairs(runs) do
  T.case(string.format("run %d of %d", n, #runs), function ()
    assert(licence_args, "set-up failed")
    local knobs = {}
    for k, v in pairs(C.knobs or {}) do knobs[k] = v end
    for k, v in pairs(run.knobs or {}) do knobs[k] = v end
    local sets = {}
    for k, v in pairs(C.set or {}) do sets[k] = v end
    for k, v in pairs(run.set or {}) do sets[k] = v end
    for k, v in pairs(sets) do
      if type(v) == "string" then sets[k] = v:gsub("{dir}", dir) end
    end
    local recipe = run.recipe or C.recipe or "h753"
    local install = not recipe:match("^recover/") -- recovery recipes take no image or licence
    if sets.verify == nil and install then sets.verify = dir .. "/fw.bin" end
    local setargs = {}
    for k, v in pairs(sets) do if v ~= false then setargs[#setargs + 1] = "--set " .. q(k .. "=" .. tostring(v)) end end
    local cmd = string.format("%s%s --json -v %s/recipes/%s.lua %s --probe %s --journal %s %s",
      env, SFIRUN, SRC, recipe, install and ("--set image=" .. q(dir .. "/fw.sfi") .. " " .. licence_args) or "",
      q(uri(knobs)), q(dir .. "/journal.sqlite"), table.concat(setargs, " "))
    if run.interrupt_ms then
      cmd = string.format("{ %s & pid=$!; sleep %.3f; kill -INT $pid; wait $pid; }", cmd, run.interrupt_ms / 1000)
    end
    local code, out = T.sh(cmd)
    local ex = run.expect or {}
    local ev = json_events(out)
    local result
    for _, e in ipairs(ev) do if e.event == "result" then result = e end end
    local function ctx() return "\n--- output ---\n" .. out:sub(-6000) end
    T.eq(code, ex.exit or 0, "exit code" .. ctx())
    if ex.code then
      assert(result and result.code == ex.code, "error code: expected " .. ex.code .. ctx())
    end
    if ex.step then
      assert(result and result.step == ex.step, "failing step: expected " .. ex.step .. ctx())
    end
    for k, v in pairs(ex.fact or {}) do
      assert(result and result[k] == v, string.format("result %s: expected %s%s", k, tostring(v), ctx()))
    end
    for _, s in ipairs(ex.output or {}) do
      assert(out:find(s, 1, true), "missing in output: " .. s .. ctx())
    end
    for _, s in ipairs(ex.no_output or {}) do
      assert(not out:find(s, 1, true), "unexpected in output: " .. s .. ctx())
    end
  end)
end

local fin = C.final or {}
T.case("final chip and licence state", function ()
  if fin.ob or fin.flash then
    local p <close> = probe.open { uri = "sim:" .. (C.chip or "stm32h753") .. "?state=" .. state .. "&rss=off" }
    local v = ob.read(p)
    for k, want in pairs(fin.ob or {}) do T.eq(v[k], want, "option byte " .. k) end
    if fin.flash == "firmware" then
      assert(p:read(0x08000000, #fw) == fw, "flash does not hold the firmware")
    elseif fin.flash == "erased" then
      T.eq(p:read(0x08000000, 4096), string.rep("\xFF", 4096), "flash erased")
    end
  end
  if fin.licences_used and tok then
    local hsm = require "sfi.hsm"
    local h <close> = hsm.open(tok.open_opts)
    T.eq((C.max or 5) - h:counter(), fin.licences_used, "licences used")
  end
  for _, want in ipairs(fin.files or {}) do
    local _, list = T.sh("ls " .. q(dir .. "/" .. want.dir))
    local names = {}
    for name in list:gmatch("[^\n]+") do names[#names + 1] = name end
    T.eq(#names, want.count, "files in " .. want.dir)
    for _, name in ipairs(names) do
      local body = T.readfile(dir .. "/" .. want.dir .. "/" .. name)
      assert(body:find(want.contains, 1, true), name .. " lacks " .. want.contains)
    end
  end
  if fin.journal_fields then
    local journal = require "sfi.journal"
    local rows = journal.rows(dir .. "/journal.sqlite")
    local last = rows[#rows]
    for k, v in pairs(fin.journal_fields) do
      local got = last and last.fields and last.fields[k]
      assert(got and tostring(got):find(v, 1, true), "journal field " .. k .. ": " .. tostring(got))
    end
  end
  if fin.journal_events then
    local journal = require "sfi.journal"
    local kinds = {}
    for _, e in ipairs(journal.events(dir .. "/journal.sqlite")) do
      kinds[#kinds + 1] = e.kind
      assert(e.detail and e.detail:find("before", 1, true), "event evidence: " .. tostring(e.detail))
    end
    T.eq(kinds, fin.journal_events, "journal events")
  end
  if fin.journal_unknown then
    local journal = require "sfi.journal"
    local unknown = 0
    local ok, rows = pcall(journal.rows, dir .. "/journal.sqlite")
    if not ok then
      assert(rows.code == "NOT_FOUND", tostring(rows))
      rows = {} -- no licence was ever asked for: the journal was never created
    end
    for _, r in ipairs(rows) do
      if r.outcome == nil or r.outcome == "" or r.outcome == "unknown" then unknown = unknown + 1 end
    end
    T.eq(unknown, fin.journal_unknown, "journal rows with unknown outcome")
  end
end)
