--- sfi.cli.hsm: `sfirun hsm provision|info|license`: the licence token over PKCS#11.
-- The token is a PKCS#11 URI (--hsm); the PIN comes from pin-source= in the URI or from
-- $SFI_HSM_PIN, never from the command line.
local args = require "sfi.cli.args"
local config = require "sfi.config"
local errors = require "sfi.error"
local hsm = require "sfi.hsm"
local license = require "sfi.license"
local util = require "sfi.util"
local log = require "sfi.log"

local M = {}

local SPEC <const> = {
  { "hsm", "--hsm", value = "URI",
    help = "PKCS#11 URI: pkcs11:token=LABEL?module-path=...&pin-source=env:VAR|file:PATH" },
  { "key", "--key", value = "FILE", help = "provision: firmware key (16 bytes, raw or hex)" },
  { "nonce", "--nonce", value = "FILE", help = "provision: firmware nonce (12 bytes, raw or hex)" },
  { "fwid", "--fwid", value = "ID", help = "provision: firmware ID" },
  { "max", "--max", value = "N", help = "provision: number of licences" },
  { "ca", "--ca", value = "PUB.pem", help = "provision: chip CA to trust (default: the simulator CA, with a warning)" },
  { "cert", "--cert", value = "FILE", help = "license: chip certificate (136 bytes)" },
  { "output", "--output", "-o", value = "FILE", help = "license: licence file to write" },
  { "uid", "--uid", value = "HEX", help = "license: chip UID recorded in the journal" },
  { "recipe", "--recipe", value = "NAME", help = "license: recipe name recorded in the journal" },
  { "station", "--station", value = "NAME", help = "station name recorded in the journal" },
  { "journal", "--journal", value = "PATH", help = "licence journal database" },
}

local USAGE <const> = [==[
usage: sfirun hsm provision --hsm URI --key K --nonce N --fwid ID --max N [--ca PUB.pem]
       sfirun hsm info --hsm URI [--json]
       sfirun hsm license --hsm URI --cert chip.bin -o lic.bin [--uid HEX] [--recipe NAME]]==]

local function need(opts, k, what)
  if not opts[k] then errors.raise("USAGE", nil, "hsm " .. what .. ": --" .. k .. " is required") end
  return opts[k]
end

local function readfile(path, what)
  local ok, s = pcall(util.read_file, path, what, 1024 * 1024)
  if not ok then errors.raise("USAGE", nil, errors.is(s) and s.msg or tostring(s)) end
  return s
end


local function hex(s) return (s:gsub(".", function (c) return string.format("%02x", c:byte()) end)) end

local function open(opts)
  local uri = opts.hsm or (opts.gopts and opts.gopts.hsm)
  if not uri then errors.raise("USAGE", nil, "hsm: --hsm URI is required") end
  return hsm.open { uri = uri }
end

local function provision(opts)
  local key = license.read_secret(need(opts, "key", "provision"), { 16 }, "key file")
  local nonce = license.read_nonce(need(opts, "nonce", "provision"))
  local fwid = need(opts, "fwid", "provision")
  local max = args.int(need(opts, "max", "provision"), "--max")
  local ca = opts.ca
  if not ca then
    local here = package.searchpath("sfi.config", package.path) or "./scripts/sfi/config.lua"
    ca = here:gsub("scripts/sfi/config%.lua$", "") .. "vendor/sim/ca-pub.pem"
    log.warn("no --ca given: trusting the SIMULATOR chip CA (%s); real chips need ST's CA", ca)
  end
  local _, ca_pub = license.load_key(ca, false)
  local h <close> = open(opts)
  h:provision { key = key, nonce = nonce, fwid = fwid, max = max, ca = ca_pub }
  log.event("hsm.provision", { fwid = fwid, max = max },
    string.format("HSM provisioned: firmware ID %s, %d licences", fwid, max))
  return 0
end

local function info(opts)
  local h <close> = open(opts)
  local i = h:info()
  if opts.json then
    io.stdout:write(util.json { token = i.token, serial = i.serial, state = i.state, fwid = i.fwid,
      counter = i.counter, counter_objects = i.counter_objects, ca = i.ca and hex(i.ca) or nil }, "\n")
  else
    io.stdout:write(string.format("token:     %s\nstate:     %s\nfirmware:  %s\nlicences:  %s\n",
      i.token, i.state, i.fwid or "-", i.counter and tostring(i.counter) or "-"))
    if i.ca then io.stdout:write("chip CA:   ", hex(i.ca):sub(1, 32), "...\n") end
  end
  return 0
end

local function lic(opts)
  local cert = readfile(need(opts, "cert", "license"), "certificate")
  local out = need(opts, "output", "license")
  util.check_output(out, "hsm license -o") -- before a licence is spent, not after
  local h <close> = open(opts)
  local l, after = h:license(cert, { uid = opts.uid, recipe = opts.recipe, station = opts.station })
  util.write_file(out, l)
  log.event("hsm.license", { counter = after, output = out },
    string.format("licence written to %s (%d left)", out, after))
  return 0
end

--- M.run(argv, first, gopts) -> exit code
function M.run(argv, first, gopts)
  local sub = argv[first]
  if not sub or sub == "--help" or sub == "-h" then
    io.stdout:write(USAGE, "\n\noptions:\n", args.help(SPEC), "\n")
    return sub and 0 or 2
  end
  local opts = args.parse(argv, SPEC, "hsm", first + 1)
  if opts.help then io.stdout:write(USAGE, "\n\noptions:\n", args.help(SPEC), "\n"); return 0 end
  args.setup_log(opts)
  opts.gopts = gopts
  config.journal = opts.journal or (gopts and gopts.journal) or config.journal
  config.station = opts.station or config.station
  -- outputs go into existing directories only, checked before the token opens
  if config.journal then util.check_output(config.journal, "--journal") end
  if sub == "license" and opts.output then util.check_output(opts.output, "hsm license -o") end
  if sub == "provision" then return provision(opts) end
  if sub == "info" then return info(opts) end
  if sub == "license" then return lic(opts) end
  errors.raise("USAGE", nil, "hsm: unknown sub-command '" .. sub .. "' (provision, info, license)")
end

return M
