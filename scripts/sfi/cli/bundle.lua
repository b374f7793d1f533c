--- sfi.cli.bundle: `sfirun bundle create|verify`.
--   sfirun bundle create RECIPE [-C DIR] [--include PATH]... --sign KEY.pem -o NAME.sfib
--          [--name N] [--version V] [--permit read:PARAM]... [--sfirun ">=0.1 <0.2"] [--zip]
--   sfirun bundle verify NAME.sfib --trust OEM.pub [--json]
-- Running a bundle is `sfirun NAME.sfib --trust OEM.pub [--set ...]`.
local args = require "sfi.cli.args"
local errors = require "sfi.error"
local log = require "sfi.log"
local bundle = require "sfi.bundle"

local M = {}

local CREATE <const> = {
  { "include", "--include", value = "PATH", multi = true, help = "add a file or directory (relative path)" },
  { "base", "-C", "--base", value = "DIR", help = "--include paths are relative to DIR" },
  { "sign", "--sign", value = "KEY.pem|URI", help = "OEM private key: PEM (Ed25519 or EC P-256), " ..
    "or pkcs11:token=..;object=..?module-path=..&pin-source=.. (EC P-256 kept in a token)" },
  { "out", "-o", "--output", value = "NAME.sfib", help = "bundle to write" },
  { "name", "--name", value = "NAME", help = "bundle name (default: the recipe's name)" },
  { "version", "--version", value = "V", help = "bundle version (default: the recipe's version)" },
  { "permit", "--permit", value = "read:PARAM", multi = true,
    help = "let the recipe open the file named by a parameter (read: or write:)" },
  { "sfirun", "--sfirun", value = "'>=A <B'", help = "sfirun versions the bundle runs on" },
  { "zip", "--zip", help = "write a zip archive instead of tar.gz" },
}

local VERIFY <const> = {
  { "trust", "--trust", value = "KEY.pub", help = "OEM public key the bundle must be signed by" },
}

local USAGE_TEXT <const> = [[
usage: sfirun bundle create RECIPE [-C DIR] [--include PATH]... --sign KEY.pem -o NAME.sfib
                            [--name N] [--version V] [--permit read:PARAM]... [--zip]
       sfirun bundle verify NAME.sfib --trust OEM.pub [--json]
       sfirun NAME.sfib --trust OEM.pub [--set KEY=VALUE]...   (runs the bundle)]]

local function usage(msg)
  errors.raise("USAGE", nil, msg .. " (see 'sfirun bundle --help')")
end

local function create(argv, first)
  local opts, pos = args.parse(argv, CREATE, "bundle create", first)
  args.setup_log(opts)
  if opts.help then
    io.stdout:write(USAGE_TEXT, "\n\noptions:\n", args.help(CREATE), "\n")
    return 0
  end
  if #pos ~= 1 then usage("bundle create needs exactly one RECIPE") end
  if not opts.sign then usage("bundle create needs --sign KEY.pem") end
  if not opts.out then usage("bundle create needs -o NAME.sfib") end
  local _, s = bundle.create {
    recipe = pos[1], include = opts.include, base = opts.base, sign = opts.sign, out = opts.out,
    name = opts.name, version = opts.version, permits = opts.permit, sfirun = opts.sfirun,
    format = opts.zip and "zip" or "tar.gz",
  }
  log.event("bundle_created", { name = s.name, version = s.version, files = s.files,
      signer = s.signer, sfirun = s.sfirun, bytes = s.bytes, path = opts.out },
    string.format("Bundle %s %s written to %s: %d files, %d bytes, sfirun %s, signer %s",
      s.name, s.version, opts.out, s.files, s.bytes, s.sfirun, s.signer))
  return 0
end

local function verify(argv, first)
  local opts, pos = args.parse(argv, VERIFY, "bundle verify", first)
  args.setup_log(opts)
  if opts.help then
    io.stdout:write(USAGE_TEXT, "\n\noptions:\n", args.help(VERIFY), "\n")
    return 0
  end
  if #pos ~= 1 then usage("bundle verify needs exactly one NAME.sfib") end
  if not opts.trust then usage("bundle verify needs --trust KEY.pub") end
  local m = bundle.verify(pos[1], opts.trust)
  local permits = {}
  for _, p in ipairs(m.permits) do permits[#permits + 1] = p.access .. ":" .. p.param end
  log.event("bundle_verified", { name = m.name, version = m.version, signer = m.signer,
      entry = m.entry, files = #m.files, format = m.format,
      sfirun = ">=" .. m.min_sfirun .. " <" .. m.max_sfirun,
      permits = table.concat(permits, " ") },
    string.format("Bundle %s %s OK: %d files (%s), entry %s, sfirun >=%s <%s, signer %s%s",
      m.name, m.version, #m.files, m.format, m.entry, m.min_sfirun, m.max_sfirun, m.signer,
      #permits > 0 and (", permits " .. table.concat(permits, " ")) or ""))
  return 0
end

--- M.run(argv, first, gopts) -> exit code. Raises USAGE and the errors of sfi.bundle.
function M.run(argv, first)
  local sub = argv[first]
  if sub == "create" then return create(argv, first + 1) end
  if sub == "verify" then return verify(argv, first + 1) end
  if sub == nil or sub == "--help" or sub == "-h" then
    io.stdout:write(USAGE_TEXT, "\n")
    return sub and 0 or 2
  end
  usage("unknown bundle command '" .. tostring(sub) .. "'")
end

return M
