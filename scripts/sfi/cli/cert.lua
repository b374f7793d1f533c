--- sfi.cli.cert: `sfirun cert get --probe URI -o chip.bin [--json]`: reads the chip
-- certificate over the debug port (address from the device pack: model) and writes it
-- (atomically, refusing to overwrite), printing the product ID and the key fingerprint.
local args = require "sfi.cli.args"
local core = require "sfi.core"
local device = require "sfi.device"
local errors = require "sfi.error"
local image = require "sfi.image"
local license = require "sfi.license"
local log = require "sfi.log"
local probe = require "sfi.probe"

local M = {}

local SPEC <const> = {
  { "probe", "--probe", value = "URI", help = "probe URI (e.g. sim:stm32h753?uid=...)" },
  { "output", "--output", "-o", value = "FILE", help = "where to write the 136-byte certificate" },
}

--- M.run(argv, first) -> exit code. Raises USAGE, the probe's errors, FORMAT.
function M.run(argv, first)
  local o, pos = args.parse(argv, SPEC, "cert", first)
  args.setup_log(o)
  if o.help or pos[1] ~= "get" then
    io.stdout:write("usage: sfirun cert get --probe URI -o chip.bin [--json]\n", args.help(SPEC), "\n")
    return o.help and 0 or 2
  end
  if not o.probe or not o.output then errors.raise("USAGE", nil, "cert get needs --probe and -o") end
  require("sfi.util").check_output(o.output, "cert get -o") -- before the probe opens
  local p <close> = probe.open { uri = o.probe, connect = "hotplug" }
  local info = p:info()
  local pack = p.pack or device.by_devid(info.dev_id)
  if not (pack.rss and pack.rss.cert) then
    errors.raise("UNSUPPORTED", "cert.get", pack.family .. ": no certificate address in the device pack")
  end
  log.info("Requesting Chip Certificate from device ...")
  local cert = p:read(pack.rss.cert, license.CERT_SIZE)
  local c = license.parse_cert(cert)
  image.write(o.output, cert, true)
  log.event("certificate", { uid = info.uid, product_id = c.product_id, file = o.output,
    key_sha256 = core.sha256(c.pub) }, string.format("Get Certificate done successfully: " ..
    "product %s, chip UID %s, key %s... -> %s", c.product_id, info.uid, core.sha256(c.pub):sub(1, 16),
    o.output))
  return 0
end

return M
