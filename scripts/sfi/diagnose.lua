--- sfi.diagnose: turns what is known about a failed install into likely causes, from the rules
-- in vendor/st/diagnosis.lua (public reports and ST's own messages). Two sources of facts: a
-- log of ST's programmer or of sfirun (M.facts_from_log, for `sfirun explain`) and a running
-- install (M.rss_failure, the decoder of an RSS result).
local M = {}

local RULES = require "st.diagnosis"
local util = require "sfi.util"

local function num(s)
  return s and util.parse_int(s)
end

--- M.facts_from_log(text) -> facts {dev_id, device, rev, bl, protocol, areas, area_types,
-- protocols, results = {values...}, probes = {names...}, tool, voltages = {...}, lines = text,
-- parts_started, failures, successes}: what a log of ST's programmer (the `HH:MM:SS : text`
-- format, or plain) or of sfirun says; a pasted thread may hold several attempts, hence the
-- lists. Unknown fields stay nil.
function M.facts_from_log(text)
  local f = { results = {}, probes = {}, voltages = {}, area_types = {}, protocols = {}, lines = text,
              failures = 0, successes = 0 }
  for line in text:gmatch("[^\r\n]+") do
    line = line:gsub("^%d%d:%d%d:%d%d%s*:%s*", ""):gsub("^%s+", "")
    local v
    v = line:match("^Device ID%s*:%s*(0x%x+)")
    if v then f.dev_id = num(v) end
    v = line:match("^BL Version%s*:%s*(0x%x+)")
    if v then f.bl = num(v) end
    v = line:match("^Device name%s*:%s*(.-)%s*$")
    if v then f.device = v end
    v = line:match("^Revision ID%s*:%s*(.-)%s*$")
    if v then f.rev = v end
    v = line:match("protocol version%s*:%s*(%d+)")
    if v then
      f.protocol = num(v)
      f.protocols[#f.protocols + 1] = f.protocol
    end
    v = line:match("total number of areas%s*:%s*(%d+)")
    if v then f.areas = num(v) end
    v = line:match("^Area type%s*:%s*(%u)")
    if v then f.area_types[#f.area_types + 1] = v end
    v = line:match("RSS complete [Vv]alue%s*=%s*(0x%x+)")
    if v then f.results[#f.results + 1] = num(v) end
    v = line:match("^Board%s*:%s*(.-)%s*$") or line:match("^Probe:%s*(.-)%s*$")
    if v then f.probes[#f.probes + 1] = v end
    v = line:match("^Voltage%s*:%s*([%d,%.]+)%s*V")
    if v then f.voltages[#f.voltages + 1] = tonumber((v:gsub(",", "."))) end
    v = line:match("(STM32CubeProgrammer[%w%s]*v[%d%.]+)") or line:match("(STM32 Cube Programmer /.-v[%d%.]+)")
    if v and not f.tool then f.tool = v end
    if line:match("^Starting SFI part") then f.parts_started = (f.parts_started or 0) + 1 end
    if line:match("Install Operation Success") or line:match("finished successfully") then
      f.successes = f.successes + 1
    end
    if line:match("Install Operation Failure") or line:match("SECURITY State Fail") then
      f.failures = f.failures + 1
    end
  end
  return f
end

local function has(list, x)
  for _, v in ipairs(list or {}) do if v == x then return true end end
  return false
end

local function matches(w, f)
  if w.dev_id and f.dev_id ~= w.dev_id then return false end
  if w.bl_max and not (f.bl and f.bl <= w.bl_max) then return false end
  if w.bl_min and not (f.bl and f.bl >= w.bl_min) then return false end
  if w.protocol and not (f.protocol == w.protocol or has(f.protocols, w.protocol)) then return false end
  if w.result and not has(f.results, w.result) then return false end
  if w.line and not (f.lines and f.lines:find(w.line, 1, true)) then return false end
  if w.probe then
    local hit = false
    for _, p in ipairs(f.probes or {}) do hit = hit or p:find(w.probe, 1, true) ~= nil end
    if not hit then return false end
  end
  if w.voltage_above then
    local hit = false
    for _, v in ipairs(f.voltages or {}) do hit = hit or v > w.voltage_above end
    if not hit then return false end
  end
  return true
end

--- M.diagnose(facts) -> findings {{id, kind = "cause"|"info", cause, source, fix}...}: every
-- rule whose facts all hold; a more specific rule (more facts) comes first.
function M.diagnose(f)
  local out = {}
  for i, r in ipairs(RULES) do
    if matches(r.when, f) then
      local n = 0
      for _ in pairs(r.when) do n = n + 1 end
      out[#out + 1] = { id = r.id, kind = r.kind, cause = r.cause, source = r.source, fix = r.fix,
        weight = (r.kind == "cause" and 100 or 0) + n * 10 - i * 0.01 }
    end
  end
  table.sort(out, function (a, b) return a.weight > b.weight end)
  return out
end

--- M.code_text(pack, v, img_hashed) -> name | nil, text, origin: what the pack knows of an RSS
-- complete value: its name in rss.codes, the text to show (for "hash": the one that matches
-- the image: not supported, or required) and where the value comes from ("observed" in
-- public logs, "model" for the simulator's own, or "unknown").
function M.code_text(pack, v, img_hashed)
  local name
  for k, c in pairs(pack.rss.codes) do if c == v then name = k end end
  local info = name and pack.rss.meaning and pack.rss.meaning[name]
  if not info then return name, nil, "unknown" end
  local text = info.text
  if name == "hash" then
    text = img_hashed and (pack.sfi.message_hash_unsupported or info.text) or
      "this RSS requires a hashed SFI image (build it with --hash 1)"
  end
  return name, text, info.observed and "observed" or "model"
end

return M
