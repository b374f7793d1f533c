--- sfi.gang: one recipe on several probes at once (a gang station). Each slot runs as its own
-- sfirun process (`sfirun --json RECIPE --probe URI ...`, SFIRUN_SLOT=name): its own Lua state,
-- its own probe driver and libusb, so a slot that crashes, hangs or fails cannot disturb the
-- others, and licence issuance is exactly the single-run path (the HSM guard and the journal
-- already serialise processes). The parent reads every slot's JSON events, shows a live board
-- on a terminal (or passes the events on, each with its `slot` field), forwards Ctrl-C, waits
-- for every slot to finish or abort, and prints a summary.
local errors = require "sfi.error"
local log = require "sfi.log"
local core = require "sfi.core"
local proc = require "sfi.core.proc"
local util = require "sfi.util"

local M = {}

-- ---- a JSON reader for sfirun's own event lines (objects of strings, numbers, booleans) ----

local ESC <const> = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
  r = "\r", t = "\t" }

local function utf8_of(cp) return utf8.char(cp) end

--- M.decode(line) -> table | nil: one JSON value; nil when the line is not JSON.
function M.decode(s)
  local pos = 1
  local value
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local function str()
    local out, i = {}, pos + 1
    while true do
      local j = s:find('["\\]', i)
      if not j then error("unterminated string") end
      out[#out + 1] = s:sub(i, j - 1)
      if s:sub(j, j) == '"' then pos = j + 1; return table.concat(out) end
      local e = s:sub(j + 1, j + 1)
      if e == "u" then
        local cp = tonumber(s:sub(j + 2, j + 5), 16)
        if not cp then error("bad \\u escape") end
        out[#out + 1] = utf8_of(cp)
        i = j + 6
      else
        out[#out + 1] = ESC[e] or error("bad escape")
        i = j + 2
      end
    end
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then error("key expected") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then error("':' expected") end
        pos = pos + 1
        t[k] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then error("',' expected") end
      end
    elseif c == "[" then
      local t = {}
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        t[#t + 1] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then error("',' expected") end
      end
    elseif c == '"' then
      return str()
    elseif s:sub(pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif s:sub(pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif s:sub(pos, pos + 3) == "null" then pos = pos + 4; return nil
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" then error("value expected") end
      pos = pos + #num
      return math.tointeger(tonumber(num)) or tonumber(num)
    end
  end
  local ok, v = pcall(value)
  if not ok then return nil end
  return v
end

-- ---- slots -----------------------------------------------------------------------------------

--- M.read_gang_file(path) -> { {slot=, probe=}... }: one slot per line, "NAME URI" or "URI"
-- (named slotN); '#' starts a comment. Raises USAGE naming the line.
function M.read_gang_file(path)
  local ok, text = pcall(util.read_file, path, "gang file", 1024 * 1024)
  if not ok then errors.raise("USAGE", nil, "cannot read gang file: " .. errors.text(text)) end
  local slots, n = {}, 0
  if text ~= "" and text:sub(-1) ~= "\n" then text = text .. "\n" end
  for line in text:gmatch("(.-)\n") do
    n = n + 1
    line = line:gsub("#.*$", ""):match("^%s*(.-)%s*$")
    if line ~= "" then
      local a, b = line:match("^(%S+)%s+(%S+)$")
      if not a then
        if line:find("%s") then
          errors.raise("USAGE", nil, string.format("gang file line %d: expected 'NAME URI' or " ..
            "'URI', got '%s'", n, line))
        end
        a, b = nil, line
      end
      slots[#slots + 1] = { slot = a, probe = b }
    end
  end
  return slots
end

--- M.slots(probes, gang_file) -> slots with unique names. Raises USAGE (duplicate probe or
-- name, more than 64 slots).
function M.slots(probes, gang_file)
  local list = {}
  for _, p in ipairs(probes or {}) do list[#list + 1] = { probe = p } end
  if gang_file then
    for _, s in ipairs(M.read_gang_file(gang_file)) do list[#list + 1] = s end
  end
  if #list > 64 then errors.raise("USAGE", nil, "at most 64 slots, got " .. #list) end
  local names, uris = {}, {}
  for i, s in ipairs(list) do
    s.slot = s.slot or ("slot" .. i)
    if not s.slot:match("^[%w_%-%.]+$") then
      errors.raise("USAGE", nil, "slot name '" .. s.slot .. "': letters, digits, _ - . only")
    end
    if names[s.slot] then errors.raise("USAGE", nil, "slot name '" .. s.slot .. "' used twice") end
    if uris[s.probe] then errors.raise("USAGE", nil, "probe '" .. s.probe .. "' used twice") end
    names[s.slot], uris[s.probe] = true, true
  end
  return list
end

-- ---- the board -------------------------------------------------------------------------------

local function clock(ms) return string.format("%3d.%ds", ms // 1000, (ms % 1000) // 100) end

local function bar(done, total, width)
  if not total or total == 0 then return string.rep(" ", width + 2) end
  local n = math.min(width, math.floor(width * done / total + 0.5))
  return "[" .. string.rep("#", n) .. string.rep(".", width - n) .. "]"
end

local function board_lines(slots, t0)
  local out = {}
  local wslot, wprobe = 4, 5
  for _, s in ipairs(slots) do
    wslot = math.max(wslot, #s.slot)
    wprobe = math.min(36, math.max(wprobe, #s.probe))
  end
  local now = core.now_ms()
  local counts = { ok = 0, fail = 0, running = 0 }
  for _, s in ipairs(slots) do
    local state = s.result or "running"
    counts[s.result == "ok" and "ok" or s.result and "fail" or "running"] =
      counts[s.result == "ok" and "ok" or s.result and "fail" or "running"] + 1
    local what = s.result == "ok" and "done" or s.result and
      string.format("FAILED at %s: %s", s.failed_step or "?", s.code or state) or
      (s.step and ("after " .. s.step) or "starting") .. (s.msg and (": " .. s.msg) or "")
    local line = string.format("%-" .. wslot .. "s %-" .. wprobe .. "s %s %s %-24s %s",
      s.slot, s.probe:sub(1, wprobe), bar(s.steps_done or 0, s.steps_total, 20),
      clock((s.t1 or now) - t0), s.uid or "", what)
    out[#out + 1] = line:sub(1, 160)
  end
  out[#out + 1] = string.format("%d running, %d ok, %d failed", counts.running, counts.ok,
    counts.fail)
  return out
end

-- ---- running ---------------------------------------------------------------------------------

local function child_argv(recipe, sets, opts, s)
  local argv = { "self", "--json" }
  if log.level() == "debug" or log.level() == "trace" then argv[#argv + 1] = "-v" end
  argv[#argv + 1] = recipe
  argv[#argv + 1] = "--probe"
  argv[#argv + 1] = s.probe
  if opts.hsm then argv[#argv + 1] = "--hsm"; argv[#argv + 1] = opts.hsm end
  if opts.journal then argv[#argv + 1] = "--journal"; argv[#argv + 1] = opts.journal end
  if opts.trust then argv[#argv + 1] = "--trust"; argv[#argv + 1] = opts.trust end
  local keys = {}
  for k in pairs(sets) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if k ~= "probe" then
      argv[#argv + 1] = "--set"
      argv[#argv + 1] = k .. "=" .. tostring(sets[k])
    end
  end
  return argv
end

-- The number of top-level steps the recipe would run (for the progress bars), from --plan.
local function plan_steps(recipe, sets, opts, s)
  if recipe:match("%.sfib$") then return nil end
  local argv = child_argv(recipe, sets, opts, s)
  table.insert(argv, 3, "--plan")
  local ok, c = pcall(proc.spawn, argv)
  if not ok then return nil end
  local n, lines = 0, {}
  for _ = 1, 200 do
    proc.poll({ c }, 100)
    local got, ended = c:read()
    for _, l in ipairs(got) do lines[#lines + 1] = l end
    if ended then break end
  end
  for _ = 1, 50 do if c:done() then break end; core.sleep_ms(20) end
  c:close()
  for _, l in ipairs(lines) do
    local e = M.decode(l)
    if type(e) == "table" and e.event == "plan_step" and e.depth == 0 then n = n + 1 end
  end
  return n > 0 and n or nil
end

local function on_event(s, e, raw, mode)
  if mode == "json" then
    io.stdout:write(raw, "\n")
  elseif mode == "lines" and e.msg and (e.level ~= "debug" or log.level() == "debug") then
    io.stdout:write(string.format("[%s] %s\n", s.slot, e.msg))
  end
  if e.uid and e.uid ~= "" then s.uid = e.uid end
  if e.event == "step" and e.status == "ok" then
    s.step = e.step
    s.steps_done = (s.steps_done or 0) + 1
    s.msg = nil
  elseif e.event == "step" and e.status == "fail" then
    s.failed_step = e.step
  elseif e.event == "log" and e.msg then
    s.msg = e.msg:sub(1, 60)
  elseif e.event == "result" then
    s.result = e.status == "ok" and "ok" or "fail"
    s.code = e.code
    s.failed_step = e.step or s.failed_step
    s.licence = e.licence
    s.chip_ms = e.chip_ms
  end
end

--- M.run(recipe, sets, opts, slots) -> exit code: 0 when every slot succeeded, 1 when any
-- failed (the summary names them), 2 when every slot failed on usage or bad input.
function M.run(recipe, sets, opts, slots)
  local mode = log.json() and "json" or (proc.isatty(1) and "board") or "lines"
  local total = plan_steps(recipe, sets, opts, slots[1])
  local t0 = core.now_ms()
  local kids = {}
  for i, s in ipairs(slots) do
    s.steps_total = total
    local ok, c = pcall(proc.spawn, child_argv(recipe, sets, opts, s), { "SFIRUN_SLOT=" .. s.slot })
    if not ok then
      for j = 1, i - 1 do kids[j]:signal("INT") end
      error(c, 0)
    end
    kids[i] = c
    s.t0 = core.now_ms()
  end
  if mode ~= "json" then
    log.info("gang: %d slots running %s", #slots, recipe)
  end
  local drawn, interrupted, last_draw = 0, false, 0
  local function draw(final)
    if mode ~= "board" then return end
    local now = core.now_ms()
    if not final and now - last_draw < 200 then return end
    last_draw = now
    local lines = board_lines(slots, t0)
    local out = {}
    if drawn > 0 then out[#out + 1] = string.format("\27[%dA", drawn) end
    for _, l in ipairs(lines) do out[#out + 1] = "\27[2K" .. l .. "\n" end
    io.stdout:write(table.concat(out))
    io.stdout:flush()
    drawn = #lines
  end
  local left = #slots
  while left > 0 do
    local ok, err = pcall(function ()
      proc.poll(kids, 200)
      for i, c in ipairs(kids) do
        local s = slots[i]
        if not s.exit then
          local lines = c:read()
          for _, l in ipairs(lines) do
            local e = M.decode(l)
            if type(e) == "table" and e.event then
              on_event(s, e, l, mode)
            else
              if l:match("^sfirun: ") then s.error = l:sub(9) end
              if mode ~= "board" then
                io.stdout:write(string.format("[%s] %s\n", s.slot, l))
              else
                s.msg = l:sub(1, 60)
              end
            end
          end
          local done, code, sig = c:done()
          if done then
            local rest = c:read()
            for _, l in ipairs(rest) do
              local e = M.decode(l)
              if type(e) == "table" and e.event then on_event(s, e, l, mode)
              elseif l:match("^sfirun: ") then s.error = l:sub(9) end
            end
            s.exit, s.signal, s.t1 = code, sig, core.now_ms()
            if not s.result or (code ~= 0 and s.result == "ok") then
              s.result = "fail"
              s.code = s.code or (sig ~= 0 and ("killed by signal " .. sig) or ("exit " .. code))
            end
            left = left - 1
          end
        end
      end
      draw(false)
    end)
    if not ok then
      if errors.is(err, "CANCELED") and not interrupted then
        -- Ctrl-C: every slot finishes its current operation or aborts safely; none is killed
        interrupted = true
        for i, c in ipairs(kids) do if not slots[i].exit then c:signal("INT") end end
        if mode ~= "board" then log.warn("gang: interrupted; waiting for every slot to stop") end
      elseif not errors.is(err, "CANCELED") then
        for i, c in ipairs(kids) do if not slots[i].exit then c:signal("INT") end end
        error(err, 0)
      end
    end
  end
  draw(true)
  for _, c in ipairs(kids) do c:close() end
  return M.summary(slots, t0, mode, interrupted)
end

-- ---- continuous mode ---------------------------------------------------------------------

-- The UID of the chip on a probe now, or nil (no chip, no answer). Opens and closes the probe.
local function chip_uid(uri)
  local probe = require "sfi.probe"
  local ok, uid = pcall(function ()
    local p <close> = probe.open { uri = uri, connect = "hotplug" }
    return p:info().uid
  end)
  return ok and uid or nil
end

--- M.continuous(recipe, sets, opts, slots) -> exit code: keeps serving the slots: a slot whose
-- chip is replaced (another UID answers on its probe) runs the recipe again, until Ctrl-C,
-- until the licence counter runs out (a slot fails with COUNTER), or after opts.count devices.
-- Exit 0 when it stopped without a failed device, else 1.
function M.continuous(recipe, sets, opts, slots)
  local mode = log.json() and "json" or (proc.isatty(1) and "board") or "lines"
  local t0 = core.now_ms()
  local limit = opts.count and math.tointeger(tonumber(opts.count))
  if opts.count and (not limit or limit < 1) then
    errors.raise("USAGE", nil, "--count expects a positive number, got '" .. opts.count .. "'")
  end
  local started, stopping, why = 0, false, nil
  for _, s in ipairs(slots) do s.done_ok, s.done_fail, s.state = 0, 0, "waiting" end
  if mode ~= "json" then
    log.info("gang: %d slots, continuous: a new chip on a slot's probe starts its next install",
      #slots)
  end
  local last_poll = 0
  local function busy()
    for _, s in ipairs(slots) do if s.child then return true end end
    return false
  end
  while not (stopping and not busy()) do
    local ok, err = pcall(function ()
      local kids = {}
      for _, s in ipairs(slots) do if s.child then kids[#kids + 1] = s.child end end
      proc.poll(kids, 200)
      -- running slots: their events, their end
      for _, s in ipairs(slots) do
        local c = s.child
        if c then
          for _, l in ipairs((c:read())) do
            local e = M.decode(l)
            if type(e) == "table" and e.event then on_event(s, e, l, mode)
            elseif l:match("^sfirun: ") then s.error = l:sub(9) end
          end
          local done, code = c:done()
          if done then
            for _, l in ipairs((c:read())) do
              local e = M.decode(l)
              if type(e) == "table" and e.event then on_event(s, e, l, mode) end
            end
            c:close()
            s.child = nil
            s.last_uid = s.uid or s.last_uid
            if code == 0 and s.result == "ok" then s.done_ok = s.done_ok + 1
            else s.done_fail = s.done_fail + 1 end
            if s.code == "COUNTER" then stopping, why = true, "the licence counter is exhausted" end
            log.event("device_result", { slot = s.slot, uid = s.uid, status = code == 0 and "ok" or
              "fail", code = s.code, step = s.failed_step },
              string.format("%s: %s %s", s.slot, s.uid or "?", code == 0 and "ok" or
                ("FAILED at " .. tostring(s.failed_step) .. ": " .. tostring(s.code))),
              code == 0 and "info" or "error")
            s.state = "waiting"
          end
        end
      end
      -- waiting slots: a new chip starts the next install
      local now = core.now_ms()
      if not stopping and now - last_poll >= 500 then
        last_poll = now
        for _, s in ipairs(slots) do
          if not s.child and not stopping then
            local uid = chip_uid(s.probe)
            if uid and uid ~= s.last_uid then
              if limit and started >= limit then
                stopping, why = true, string.format("%d devices done", limit)
              else
                started = started + 1
                s.uid, s.result, s.code, s.failed_step, s.error, s.step = uid, nil, nil, nil, nil, nil
                s.steps_done, s.msg = 0, nil
                s.child = proc.spawn(child_argv(recipe, sets, opts, s), { "SFIRUN_SLOT=" .. s.slot })
                s.state = "running"
              end
            end
          end
        end
        if limit and started >= limit and not busy() then
          stopping, why = true, string.format("%d devices done", limit)
        end
      end
    end)
    if not ok then
      if errors.is(err, "CANCELED") then
        if not stopping or why ~= "interrupted" then
          stopping, why = true, "interrupted"
          for _, s in ipairs(slots) do if s.child then s.child:signal("INT") end end
        end
      else
        for _, s in ipairs(slots) do if s.child then s.child:signal("INT") end end
        error(err, 0)
      end
    end
  end
  local ok_n, fail_n = 0, 0
  for _, s in ipairs(slots) do ok_n, fail_n = ok_n + s.done_ok, fail_n + s.done_fail end
  if mode ~= "json" then
    local out = { "", string.format("%-10s %-28s %6s %6s  %s", "SLOT", "PROBE", "OK", "FAILED",
      "LAST CHIP") }
    for _, s in ipairs(slots) do
      out[#out + 1] = string.format("%-10s %-28s %6d %6d  %s", s.slot, s.probe:sub(1, 28),
        s.done_ok, s.done_fail, s.last_uid or "-")
    end
    out[#out + 1] = string.format("%d devices installed, %d failed in %.1f s; stopped: %s", ok_n,
      fail_n, (core.now_ms() - t0) / 1000, why or "?")
    io.stdout:write(table.concat(out, "\n"), "\n")
  end
  log.event("gang_result", { slots = #slots, ok = ok_n, failed = fail_n, ms = core.now_ms() - t0,
    stopped = why }, string.format("%d devices installed, %d failed", ok_n, fail_n),
    fail_n == 0 and "info" or "error")
  return fail_n == 0 and 0 or 1
end

--- M.summary(slots, t0, mode, interrupted) -> exit code (see M.run); prints the table.
function M.summary(slots, t0, mode, interrupted)
  local ok, usage = 0, 0
  for _, s in ipairs(slots) do
    if s.result == "ok" and s.exit == 0 then ok = ok + 1 end
    if s.exit == 2 then usage = usage + 1 end
    local fields = { slot = s.slot, probe = s.probe, uid = s.uid, status = s.result,
      step = s.failed_step, code = s.code, ms = (s.t1 or core.now_ms()) - (s.t0 or t0),
      exit = s.exit, error = s.error, licence = s.licence, chip_ms = s.chip_ms }
    if mode == "json" then log.event("slot_result", fields) end
  end
  local total_ms = core.now_ms() - t0
  if mode ~= "json" then
    local out = { "", string.format("%-10s %-28s %-24s %-6s %-18s %s", "SLOT", "PROBE", "UID",
      "RESULT", "FAILED STEP", "TIME") }
    for _, s in ipairs(slots) do
      out[#out + 1] = string.format("%-10s %-28s %-24s %-6s %-18s %.1f s", s.slot,
        s.probe:sub(1, 28), s.uid or "-", s.result == "ok" and "ok" or "FAIL",
        s.result == "ok" and "" or ((s.failed_step or "-") .. (s.code and (" " .. s.code) or "")),
        ((s.t1 or core.now_ms()) - (s.t0 or t0)) / 1000)
    end
    out[#out + 1] = string.format("%d of %d slots succeeded in %.1f s%s", ok, #slots,
      total_ms / 1000, interrupted and " (interrupted)" or "")
    for _, s in ipairs(slots) do
      if s.result ~= "ok" and s.error and mode == "board" then
        out[#out + 1] = string.format("%s: %s", s.slot, s.error)
      end
    end
    io.stdout:write(table.concat(out, "\n"), "\n")
  else
    log.event("gang_result", { slots = #slots, ok = ok, failed = #slots - ok, ms = total_ms,
      interrupted = interrupted or nil }, string.format("%d of %d slots succeeded", ok, #slots),
      ok == #slots and "info" or "error")
  end
  if ok == #slots then return 0 end
  if usage == #slots then return 2 end
  return 1
end

return M
