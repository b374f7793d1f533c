-- luacheck configuration: Lua 5.4, no globals in the library.
std = "lua54"
max_line_length = 120
exclude_files = { "tests/data/recipes/syntax.lua" } -- broken on purpose
files["tests/**"] = { globals = { "arg" } }
