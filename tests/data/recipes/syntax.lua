-- a recipe with a syntax error on line 3
local flow = require "sfi.flow"
return flow.recipe { name = "broken" run = function () end }
