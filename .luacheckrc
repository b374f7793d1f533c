-- luacheck configuration: Lua 5.4, no globals in the library.
std = "lua54"
max_line_length = 120
exclude_files = { "tests/data/recipes/syntax.lua" } -- broken on purpose
files["tests/**"] = { globals = { "arg" } }
-- Device packs are data tables; option descriptions are quoted in full from the vendor's
-- documentation, so their lines are not wrapped.
files["vendor/**"] = { max_line_length = false }
