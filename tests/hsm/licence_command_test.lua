-- licence_command_test.lua: licences from an external program (`--set licence_command=...`):
-- sfirun's own `hsm license` in a separate process with a real SoftHSM2 token, then programs
-- that fail in every way a real one can. Each failure names the program and what happened, the
-- journal says what is known (an outcome, or "unknown" when the program was killed or timed
-- out), the chip is not touched, and no temporary file is left.
local T = require "sfi.test"
local S = require "softhsm"
local gen = require "fwgen"

local SFIRUN = S.SFIRUN
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local dir = T.tmpdir()
local tok = S.token("extern")
T.writefile(dir .. "/fw.bin", gen.bytes(20000, 4))
T.writefile(dir .. "/ob.csv", gen.OB_CSV)

T.case("set-up: an image and a provisioned token", function ()
  local code, out = T.sh(string.format("cd %s && %s image build --devid 0x450 -k %s -n %s -ob ob.csv " ..
    "-fir fw.bin 0x08000000 -o fw.sfi", q(dir), SFIRUN, q(tok.dir .. "/key.bin"), q(tok.dir .. "/nonce.bin")))
  assert(code == 0, out)
  code, out = T.sh(string.format("%s %s hsm provision --hsm %s --key %s --nonce %s --fwid EXT --max 3 " ..
    "--ca %s --journal %s", tok.env, SFIRUN, q(tok.uri), q(tok.dir .. "/key.bin"), q(tok.dir .. "/nonce.bin"),
    q(S.SRC .. "/vendor/sim/ca-pub.pem"), q(dir .. "/token-journal.sqlite")))
  assert(code == 0, out)
end)

local n = 0
-- Runs recipes/h753.lua on a fresh simulated chip with this licence command; returns exit code,
-- output, the chip's state file and the run's journal.
local function install(cmd, extra)
  n = n + 1
  local state, jr = string.format("%s/chip%d.state", dir, n), string.format("%s/journal%d.sqlite", dir, n)
  local code, out = T.sh(string.format("cd %s && SFIRUN_STATE_DIR=%s %s %s recipes/h753.lua --set image=%s " ..
    "--probe %s --journal %s --set licence_command=%s %s", q(S.SRC), q(dir .. "/state"), tok.env, SFIRUN,
    q(dir .. "/fw.sfi"), q("sim:stm32h753?state=" .. state), q(jr), q(cmd), extra or ""))
  return code, out, state, jr
end

local function rows(jr)
  local journal = require "sfi.journal"
  local ok, r = pcall(journal.rows, jr)
  return ok and r or {}
end

local function no_scratch()
  local _, ls = T.sh("ls -A " .. q(dir .. "/state/tmp") .. " 2>/dev/null")
  T.eq(ls, "", "temporary licence files left")
end

T.case("sfirun's own 'hsm license' as the external program: installed, journaled, counter -1", function ()
  local cmd = string.format("%s hsm license --hsm %s --cert {cert} -o {out} --uid {uid} --journal %s",
    SFIRUN, tok.uri, dir .. "/token-journal.sqlite")
  local code, out, _, jr = install(cmd)
  T.eq(code, 0, out)
  assert(out:find("Licence from " .. SFIRUN .. ": made by sfirun", 1, true), out)
  local r = rows(jr)
  T.eq(#r, 1, "journal rows")
  T.eq({ r[1].provider, r[1].outcome }, { "command", "ok" }, "journal row")
  local hsm = require "sfi.hsm"
  local h <close> = hsm.open(tok.open_opts)
  T.eq(h:counter(), 2, "token counter")
  no_scratch()
end)

local SH = "/bin/sh -c "
local cases = {
  { name = "exits non-zero", cmd = SH .. "'echo the card said no >&2; exit 3' {out}",
    code = 1, says = { "/bin/sh exited with status 3: the card said no" }, outcome = "TARGET" },
  { name = "hangs past licence_timeout", cmd = SH .. "'sleep 30' {out}", extra = "--set licence_timeout=1",
    code = 1, says = { "/bin/sh did not finish within 1 s" }, outcome = "unknown" },
  { name = "writes 135 bytes", cmd = SH .. "'head -c 135 /dev/zero > \"$0\"' {out}",
    code = 2, says = { "exited 0 but wrote 135 bytes, not one 136-byte licence" }, outcome = "FORMAT" },
  { name = "writes nothing", cmd = SH .. "'true' {out}",
    code = 2, says = { "exited 0 but wrote nothing" }, outcome = "FORMAT" },
  { name = "is killed by a signal", cmd = SH .. "'kill -9 $$' {out}",
    code = 1, says = { "/bin/sh was killed by signal 9" }, outcome = "unknown" },
}
for _, c in ipairs(cases) do
  T.case("a program that " .. c.name, function ()
    local code, out, state, jr = install(c.cmd, c.extra)
    T.eq(code, c.code, out)
    for _, w in ipairs(c.says) do assert(out:find(w, 1, true), "missing '" .. w .. "' in\n" .. out) end
    local r = rows(jr)
    T.eq(#r, 1, "journal rows")
    T.eq(r[1].outcome, c.outcome, "journal outcome")
    local probe = require "sfi.probe"
    local ob = require "sfi.ob"
    local p <close> = probe.open { uri = "sim:stm32h753?rss=off&state=" .. state }
    T.eq(ob.read(p).SECURITY, 0, "the chip was not touched past the licence")
    no_scratch()
  end)
end

T.case("a missing, empty or {out}-less command is a usage error before any chip", function ()
  for _, c in ipairs { { "/nonexistent/st_cli {cert} {out}", "program '/nonexistent/st_cli' not found" },
      { "no_such_program_here {out}", "not found in PATH" }, { "  ", "licence_command is empty" },
      { "/bin/true {cert}", "a word with {out}" }, { "/bin/echo '{out}", "unterminated ' quote" } } do
    local code, out = install(c[1])
    T.eq(code, 2, out)
    assert(out:find(c[2], 1, true), "missing '" .. c[2] .. "' in\n" .. out)
    assert(not out:find("Connecting", 1, true), "no chip touched:\n" .. out)
  end
end)

T.case("Ctrl-C while the program runs: it is stopped, the row stays unknown, nothing left", function ()
  n = n + 1
  local jr = string.format("%s/journal%d.sqlite", dir, n)
  local code, out = T.sh(string.format("cd %s && { SFIRUN_STATE_DIR=%s %s recipes/h753.lua --set image=%s " ..
    "--probe sim:stm32h753 --journal %s --set licence_command=%s & pid=$!; sleep 1.5; kill -INT $pid; " ..
    "wait $pid; }", q(S.SRC), q(dir .. "/state"), SFIRUN, q(dir .. "/fw.sfi"), q(jr),
    q(SH .. "'sleep 23' {out}")))
  T.eq(code, 1, out)
  assert(out:find("CANCELED", 1, true), out)
  T.eq(rows(jr)[1].outcome, "unknown", "journal outcome")
  local _, ps = T.sh("pgrep -f '^(/bin/sh -c )?sleep 23' || true")
  T.eq(ps, "", "the program was stopped")
  no_scratch()
end)

T.case("license.st_hsm: ST's CLI words from vendor/st/cubeprogrammer.lua", function ()
  local license = require "sfi.license"
  local o = license.st_hsm { slot = 2, cli = "/opt/st/bin/STM32_Programmer_CLI" }
  T.eq(o.argv, { "/opt/st/bin/STM32_Programmer_CLI", "-hsmglfcb", "{cert}", "{out}", "slot=2" })
  T.eq(license.split_words([[a 'b c' "d e" f\ g]]), { "a", "b c", "d e", "f g" })
end)
