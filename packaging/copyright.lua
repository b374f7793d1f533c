--- packaging/copyright.lua LICENSE OUT: Debian's machine-readable copyright file
-- (copyright-format 1.0) made from the project's LICENSE, so the two cannot disagree.
-- Knows the licences the project may carry by their first line; stops on any other.
local LICENSE, OUT = arg[1], arg[2]
if not OUT then
  io.stderr:write("usage: copyright.lua LICENSE OUT\n")
  os.exit(2)
end

-- first line of the licence file -> Debian's short name (SPDX "MIT" is Debian's "Expat")
local NAMES <const> = { ["MIT License"] = "Expat" }

local f = assert(io.open(LICENSE, "rb"))
local text = f:read("a")
f:close()
local first = text:match("^([^\n]*)")
local name = NAMES[first]
if not name then
  io.stderr:write("copyright.lua: ", LICENSE, " starts with '", first,
    "', a licence this script does not know: add it to NAMES\n")
  os.exit(1)
end
local holder = text:match("\nCopyright %([cC]%) ([^\n]+)")
if not holder then
  io.stderr:write("copyright.lua: no 'Copyright (c) YEAR HOLDER' line in ", LICENSE, "\n")
  os.exit(1)
end
-- the licence text: everything after the copyright line, blank lines as " ."
local body = text:match("\nCopyright %([cC]%) [^\n]+\n(.*)$"):gsub("^%s*\n", ""):gsub("%s+$", "")
local lines = {}
for l in (body .. "\n"):gmatch("(.-)\n") do
  lines[#lines + 1] = l:match("^%s*$") and " ." or (" " .. l)
end

local out = assert(io.open(OUT, "wb"))
out:write("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n",
  "Upstream-Name: sfirun\n",
  "\n",
  "Files: *\n",
  "Copyright: ", holder, "\n",
  "License: ", name, "\n",
  "\n",
  "License: ", name, "\n",
  table.concat(lines, "\n"), "\n")
out:close()
