-- gang_bench.lua: a gang station's throughput. The demo-size image (180 KiB of firmware,
-- protocol 2, no hash) is installed on 1, 4, 8 and 16 simulated STM32H753 at once, with the
-- chip's own times from the device pack (timing=datasheet) run at time_scale (default 0.1,
-- SFI_BENCH_TIME_SCALE) so the bench takes seconds. Prints, scaled back to real time:
--   devices_per_hour_N      devices per hour with N slots
--   gang_efficiency_N       throughput(N) / (N x throughput(1))      (goal >= 0.9 at N = 8)
--   overhead_per_device     sfirun's own time per device (wall minus the chip time the
--                           model charged, which the host does not scale) against the whole
--                           install at real speed                     (goal <= 0.02)
--   install_vs_floor        one install at real speed against the model's floor (the sum of
--                           the chip's own times)
-- Run: SFIRUN=$PWD/build/release/sfirun build/release/sfirun -I tests/lib --test bench/gang_bench.lua
local T = require "sfi.test"
local gang = require "sfi.gang"

local SFIRUN <const> = assert(os.getenv("SFIRUN"))
local SRC <const> = os.getenv("SFI_SOURCE_DIR") or "."
local SCALE <const> = tonumber(os.getenv("SFI_BENCH_TIME_SCALE") or "") or 0.1

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function now() return require("sfi.core").now_ns() / 1e9 end -- monotonic seconds

local dir = T.tmpdir()
require("fwgen").dev_image(dir, 184320, 9)

local run_no = 0
-- One gang of n fresh chips; returns wall seconds and the slots' chip_ms.
local function gang_run(n)
  run_no = run_no + 1
  local probes = {}
  for i = 1, n do
    probes[#probes + 1] = "--probe " .. q(string.format("sim:stm32h753?uid=%012X%012X&timing=" ..
      "datasheet&time_scale=%g", run_no, i, SCALE))
  end
  local t0 = now()
  local code, out = T.sh(string.format("SFIRUN_STATE_DIR=%s %s --json %s/recipes/h753.lua " ..
    "--set image=%s --set key=%s --set nonce=%s --journal %s %s 2>&1", q(dir .. "/st"), SFIRUN,
    SRC, q(dir .. "/fw.sfi"), q(dir .. "/key.bin"), q(dir .. "/nonce.bin"),
    q(dir .. "/j" .. run_no .. ".sqlite"), table.concat(probes, " ")))
  local wall = now() - t0
  assert(code == 0, out)
  local chip = {}
  for line in out:gmatch("[^\n]+") do
    local e = gang.decode(line)
    if type(e) == "table" and e.event == "slot_result" then
      assert(e.status == "ok", line)
      chip[#chip + 1] = e.chip_ms
    end
  end
  assert(#chip == n, out)
  return wall, chip
end

-- A single install, not through the gang (the plain single-run path).
local function single()
  run_no = run_no + 1
  local t0 = now()
  local code, out = T.sh(string.format("SFIRUN_STATE_DIR=%s %s --json %s/recipes/h753.lua " ..
    "--set image=%s --set key=%s --set nonce=%s --journal %s --probe %s 2>&1", q(dir .. "/st"),
    SFIRUN, SRC, q(dir .. "/fw.sfi"), q(dir .. "/key.bin"), q(dir .. "/nonce.bin"),
    q(dir .. "/j" .. run_no .. ".sqlite"), q(string.format("sim:stm32h753?uid=%024X&timing=" ..
    "datasheet&time_scale=%g", run_no, SCALE))))
  local wall = now() - t0
  assert(code == 0, out)
  local chip
  for line in out:gmatch("[^\n]+") do
    local e = gang.decode(line)
    if type(e) == "table" and e.event == "result" then chip = e.chip_ms end
  end
  return wall, assert(chip, "no chip_ms in the result")
end

T.case("gang.throughput", function ()
  local w1s, c1 = math.huge, nil
  for _ = 1, 3 do
    local w, c = single()
    if w < w1s then w1s, c1 = w, c end
  end
  local chip_s = c1 / 1000                      -- the chip's own time at real speed
  local overhead = w1s - chip_s * SCALE          -- host time: not scaled
  io.stdout:write(string.format("BENCH figure=overhead_per_device value=%.3f unit=s " ..
    "ref=install_real refvalue=%.2f ratio=%.4f goal=<=0.02\n", overhead, chip_s + overhead,
    overhead / (chip_s + overhead)))
  io.stdout:write(string.format("BENCH figure=install_vs_floor value=%.2f unit=s ref=model_floor " ..
    "refvalue=%.2f ratio=%.3f\n", chip_s + overhead, chip_s, (chip_s + overhead) / chip_s))
  -- one slot is the plain single run (a gang needs two probes or more)
  local thr1 = 3600 / (chip_s + overhead)
  io.stdout:write(string.format("BENCH figure=devices_per_hour_1 value=%.0f unit=dev/h\n", thr1))
  for _, n in ipairs { 4, 8, 16 } do
    local wall, chip = gang_run(n)
    -- real time: the chip part scales back by 1/SCALE, the host part does not
    local cmax = 0
    for _, c in ipairs(chip) do cmax = math.max(cmax, c / 1000) end
    local real = wall - cmax * SCALE + cmax
    local thr = n / real * 3600
    io.stdout:write(string.format("BENCH figure=devices_per_hour_%d value=%.0f unit=dev/h\n", n, thr))
    if n > 1 then
      io.stdout:write(string.format("BENCH figure=gang_efficiency_%d value=%.3f unit=ratio " ..
        "ref=%dx1slot refvalue=%.0f ratio=%.3f%s\n", n, thr / (n * thr1), n, n * thr1,
        thr / (n * thr1), n == 8 and " goal=>=0.9" or ""))
    end
  end
  local _, cores = T.sh("nproc")
  io.stdout:write(string.format("gang bench: time_scale %g, %s cores\n", SCALE, cores:match("%d+")))
end)
