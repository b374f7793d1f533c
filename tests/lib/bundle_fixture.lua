-- tests/lib/bundle_fixture.lua: shared set-up of the bundle tests: fresh OEM keys made with
-- the openssl command and signed bundles of the test recipes under tests/data/bundle/.
local T = require "sfi.test"
local bundle = require "sfi.bundle"

local M = {}

--- M.keys(dir, alg) -> {priv=, pub=}: a key pair made by `openssl genpkey` (T.skip without it).
function M.keys(dir, name, alg)
  local priv, pub = dir .. "/" .. name .. ".pem", dir .. "/" .. name .. ".pub"
  local gen = alg == "ec" and "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" or "-algorithm ed25519"
  local code, out = T.sh(string.format("openssl genpkey %s -out '%s' && openssl pkey -in '%s' -pubout -out '%s'",
    gen, priv, priv, pub))
  if code ~= 0 then T.skip("openssl cannot make keys: " .. out) end
  return { priv = priv, pub = pub }
end

--- M.make(dir, recipe, key, extra) -> path of a signed bundle of tests/data/bundle/<recipe>.
function M.make(dir, recipe, key, extra)
  local spec = { recipe = "tests/data/bundle/" .. recipe, base = "tests/data/bundle",
                 include = { "scripts", "data" }, sign = key.priv,
                 out = dir .. "/" .. recipe:gsub("%.lua$", "") .. ".sfib" }
  for k, v in pairs(extra or {}) do spec[k] = v end
  bundle.create(spec)
  return spec.out
end

return M
