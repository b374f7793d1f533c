-- tests/data/bundle/scripts/acme/util.lua: an OEM helper module carried inside a bundle.
local M = {}
function M.shout(s) return s:upper() .. "!" end
return M
