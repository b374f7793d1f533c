--- packaging/gendoc.lua: the man page and the bash completion of sfirun, generated from the
-- help text the built program prints, so neither can drift from the command line.
--
--   lua5.4 packaging/gendoc.lua SFIRUN CLI_MD CHANGELOG DATADIR DOCDIR OUT_MAN OUT_COMPLETION
--
-- SFIRUN is run with --help, COMMAND --help and COMMAND VERB --help (set SFI_SCRIPTS when it
-- is not installed yet); the verbs are the words after "sfirun COMMAND" in each usage line.
-- CLI_MD (docs/cli.md) gives the exit-code and environment tables, CHANGELOG (Debian format)
-- the version and the date of the page. Stops with a message naming what it could not read.

local SFIRUN, CLI_MD, CHANGELOG, DATADIR, DOCDIR, OUT_MAN, OUT_COMP = table.unpack(arg, 1, 7)
if not OUT_COMP then
  io.stderr:write("usage: gendoc.lua SFIRUN CLI_MD CHANGELOG DATADIR DOCDIR OUT_MAN OUT_COMPLETION\n")
  os.exit(2)
end

local function die(fmt, ...)
  io.stderr:write("gendoc: ", string.format(fmt, ...), "\n")
  os.exit(1)
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function readfile(path)
  local f, err = io.open(path, "rb")
  if not f then die("%s", err) end
  local s = f:read("a")
  f:close()
  return s
end

local function writefile(path, s)
  local f, err = io.open(path, "wb")
  if not f then die("%s", err) end
  f:write(s)
  f:close()
end

-- The help text of `sfirun WORDS... --help`; a failing --help stops the generation.
local function help_of(words)
  local cmd = quote(SFIRUN)
  for _, w in ipairs(words) do cmd = cmd .. " " .. quote(w) end
  local p = io.popen(cmd .. " --help 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok then
    die("'sfirun %s --help' failed (exit %s): %s", table.concat(words, " "), tostring(code),
      out:match("[^\n]*"))
  end
  return out
end

-- ---- parsing a help text --------------------------------------------------------------------
-- A help text is: "usage:" lines (continued by indented lines), paragraphs, "heading:" lines,
-- option rows ("  -x, --long VALUE  help", or GNU style with the help on the next line,
-- indented) and, under "commands:", command rows ("  name  what it does").

-- "--devid, -devid, --deviceid ID" -> { "--devid", "-devid", "--deviceid" }, "ID"
local function split_left(left)
  local names = {}
  for tok in (left .. ", "):gmatch("(.-), ") do names[#names + 1] = tok end
  local last = names[#names]
  local name, value = last:match("^(%S+) (.+)$")
  if name then names[#names] = name end
  return names, value
end

local function parse_help(text)
  local h = { usage = {}, shown = {}, blocks = {} } -- usage: joined lines; shown: as printed
  local lines = {}
  for l in (text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  local i, section = 1, nil
  local para
  local function block(b)
    h.blocks[#h.blocks + 1] = b
    return b
  end
  while i <= #lines do
    local l = lines[i]
    local opt_left, opt_help = l:match("^  (%-%S.-)%s%s+(%S.*)$")
    if l:match("^usage: ") then
      h.usage[#h.usage + 1] = l:sub(8)
      h.shown[#h.shown + 1] = l:sub(8)
      while lines[i + 1] and lines[i + 1]:match("^%s%s%s+%S") and not lines[i + 1]:match("^  %-") do
        i = i + 1
        local cont = lines[i]:match("^%s+(.*)$")
        h.shown[#h.shown + 1] = lines[i]:gsub("^       ", "")
        if cont:match("^sfirun ") then h.usage[#h.usage + 1] = cont
        else h.usage[#h.usage] = h.usage[#h.usage] .. " " .. cont end
      end
      para = nil
    elseif l:match("^%s*$") then
      para = nil
    elseif l:match("^%S[^:]*:$") then
      section = l:sub(1, -2)
      block { kind = "heading", text = section }
      para = nil
    elseif opt_left or (l:match("^  %-%S") and lines[i + 1] and lines[i + 1]:match("^%s%s%s%s+%S")) then
      if not opt_left then
        opt_left = l:match("^  (.-)%s*$")
        i = i + 1
        opt_help = lines[i]:match("^%s+(.-)%s*$")
      end
      local names, value = split_left(opt_left)
      local last = h.blocks[#h.blocks]
      if not (last and last.kind == "options") then last = block { kind = "options", rows = {} } end
      last.rows[#last.rows + 1] = { names = names, value = value, help = opt_help }
      para = nil
    elseif section == "commands" and l:match("^  %S+%s%s+%S") then
      local name, what = l:match("^  (%S+)%s+(.*)$")
      local last = h.blocks[#h.blocks]
      if not (last and last.kind == "commands") then last = block { kind = "commands", rows = {} } end
      last.rows[#last.rows + 1] = { name = name, help = what }
      para = nil
    else
      local text_line = l:match("^%s*(.-)%s*$")
      if para then para.text = para.text .. " " .. text_line
      else para = block { kind = "para", text = text_line } end
    end
    i = i + 1
  end
  if #h.usage == 0 then die("a help text has no 'usage:' line:\n%s", text) end
  return h
end

local COMMON <const> = { ["--verbose"] = true, ["--quiet"] = true, ["--json"] = true, ["--help"] = true }

local function is_common(row) return COMMON[row.names[1]] and not row.value end

-- ---- collecting the whole command line --------------------------------------------------------
local top_text = help_of {}
local top = parse_help(top_text)
local commands = {}
for _, b in ipairs(top.blocks) do
  if b.kind == "commands" then
    for _, r in ipairs(b.rows) do commands[#commands + 1] = { name = r.name, what = r.help } end
  end
end
if #commands == 0 then die("'sfirun --help' lists no commands") end

for _, c in ipairs(commands) do
  c.text = help_of { c.name }
  c.help = parse_help(c.text)
  c.verbs = {}
  local seen = {}
  for _, u in ipairs(c.help.usage) do
    local words = u:match("^sfirun " .. c.name:gsub("%-", "%%-") .. " (%S+)")
    for v in (words or ""):gmatch("[^|]+") do
      if v:match("^[a-z][a-z-]*$") and not seen[v] then
        seen[v] = true
        local text = help_of { c.name, v }
        local verb = { name = v, text = text }
        if text ~= c.text then verb.help = parse_help(text) end
        c.verbs[#c.verbs + 1] = verb
      end
    end
  end
end

-- ---- docs/cli.md tables ---------------------------------------------------------------------
local function md_table(md, heading)
  local rows = {}
  local body = md:match("\n## " .. heading .. "\n(.-)\n## ") or md:match("\n## " .. heading .. "\n(.*)$")
  if not body then die("%s has no '## %s' section", CLI_MD, heading) end
  local n = 0
  for l in body:gmatch("[^\n]+") do
    local a, b = l:match("^|%s*(.-)%s*|%s*(.-)%s*|$")
    if a then
      n = n + 1
      if n > 2 then rows[#rows + 1] = { a, b } end -- past the header and the --- row
    end
  end
  if #rows == 0 then die("the '## %s' table in %s has no rows", heading, CLI_MD) end
  return rows
end

local cli_md = readfile(CLI_MD)
local exit_rows = md_table(cli_md, "Exit codes")
local env_rows = md_table(cli_md, "Environment")

-- ---- version and date from the changelog ----------------------------------------------------
local changelog = readfile(CHANGELOG)
local version = changelog:match("^sfirun %(([^)]+)%)")
local day, month, year = changelog:match("\n %-%- [^\n]->  %a+, (%d+) (%a+) (%d+)")
if not version or not day then die("%s: no version or no date in its first entry", CHANGELOG) end
local MONTHS <const> = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
  Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
if not MONTHS[month] then die("%s: bad month '%s'", CHANGELOG, month) end
local date = string.format("%s-%02d-%02d", year, MONTHS[month], tonumber(day))

-- ---- the man page ---------------------------------------------------------------------------
-- Text: a backslash is \e, a line may not start with . or '. Syntax (options, usage): every
-- '-' is a minus sign. Markdown `code` is bold.
local function text(s)
  s = s:gsub("\\", "\\e")
  s = s:gsub("`([^`]+)`", function (c) return "\\fB" .. c .. "\\fR" end)
  if s:match("^[.']") then s = "\\&" .. s end
  return s
end

local function syntax(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  if s:match("^[.']") then s = "\\&" .. s end
  return s
end

local man = {}
local function put(...)
  for _, s in ipairs { ... } do man[#man + 1] = s end
end

local function put_option(r)
  local names = {}
  for _, n in ipairs(r.names) do names[#names + 1] = "\\fB" .. syntax(n) .. "\\fR" end
  put(".TP", table.concat(names, ", ") .. (r.value and (" \\fI" .. syntax(r.value) .. "\\fR") or ""),
    text(r.help))
end

-- The usage lines as the program prints them; with `only` ("sfirun image build"), the ones
-- that start so (and their continuation lines) when there are any.
local function put_usage(h, only)
  local keep, any = {}, false
  local on = false
  for i, u in ipairs(h.shown) do
    if u:match("^sfirun ") then on = (not only) or u:sub(1, #only + 1) == only .. " " end
    keep[i] = on
    any = any or on
  end
  put(".nf")
  for i, u in ipairs(h.shown) do
    if keep[i] or not any then
      local rest = u:match("^sfirun(.*)$")
      if rest then put("\\fBsfirun\\fR" .. syntax(rest)) else put(syntax(u)) end
    end
  end
  put(".fi")
end

-- The blocks of a help text; `skip_common` leaves out --verbose/--quiet/--json/--help, and
-- `skip` (a set of option names) the rows a verb's own section shows. A heading is shown only
-- when something follows it.
local function put_blocks(h, skip_common, skip)
  local heading
  for _, b in ipairs(h.blocks) do
    if b.kind == "para" and not b.text:match("^exit codes:") then
      put(".PP", text(b.text))
    elseif b.kind == "heading" then
      heading = (b.text ~= "options" and b.text ~= "commands") and b.text or nil
    elseif b.kind == "options" then
      local any = false
      for _, r in ipairs(b.rows) do
        if not (skip_common and is_common(r)) and not (skip and skip[r.names[1]]) then
          if heading then put(".PP", "\\fI" .. text(heading) .. ":\\fR") end
          heading = nil
          put_option(r)
          any = true
        end
      end
      if any then put(".PP") end
    end
  end
end

put(string.format('.TH SFIRUN 1 "%s" "sfirun %s" "User Commands"', date, version))
put(".SH NAME",
  "sfirun \\- install firmware into STM32 microcontrollers with Lua recipes (Secure Firmware Install)")
put(".SH SYNOPSIS")
put_usage(top)
put(".SH DESCRIPTION")
for _, b in ipairs(top.blocks) do
  if b.kind == "para" and not b.text:match("^exit codes:") then put(".PP", text(b.text)) end
end
put(".PP", "The installed Lua library, device packs and recipes are in \\fI" .. syntax(DATADIR) ..
  "\\fR; the documentation is in \\fI" .. syntax(DOCDIR) .. "\\fR.")
put(".SH OPTIONS")
put_blocks({ blocks = (function ()
  local bs = {}
  for _, b in ipairs(top.blocks) do if b.kind == "options" then bs[#bs + 1] = b end end
  return bs
end)() }, false)
put(".PP", "Every command below also takes \\fB\\-\\-verbose\\fR, \\fB\\-\\-quiet\\fR, " ..
  "\\fB\\-\\-json\\fR and \\fB\\-\\-help\\fR as above.")
put(".SH COMMANDS")
for _, c in ipairs(commands) do
  put(".TP", "\\fB" .. syntax(c.name) .. "\\fR", text(c.what))
end
for _, c in ipairs(commands) do
  put('.SH "COMMAND: ' .. c.name:upper() .. '"')
  put_usage(c.help)
  local in_verbs = {}
  for _, v in ipairs(c.verbs) do
    for _, b in ipairs(v.help and v.help.blocks or {}) do
      for _, r in ipairs(b.rows or {}) do in_verbs[r.names[1]] = true end
    end
  end
  put_blocks(c.help, true, in_verbs)
  for _, v in ipairs(c.verbs) do
    if v.help then
      put(".SS " .. '"sfirun ' .. c.name .. " " .. v.name .. '"')
      put_usage(v.help, "sfirun " .. c.name .. " " .. v.name)
      put_blocks(v.help, true)
    end
  end
end
put(".SH EXIT STATUS")
for _, r in ipairs(exit_rows) do put(".TP", "\\fB" .. text(r[1]) .. "\\fR", text(r[2])) end
put(".SH ENVIRONMENT")
for _, r in ipairs(env_rows) do
  put(".TP", "\\fB" .. syntax(r[1]:gsub("`", "")) .. "\\fR", text(r[2]))
end
put(".SH FILES")
put(".TP", "\\fI" .. syntax(DATADIR) .. "/scripts\\fR", "the sfi.* Lua library recipes use")
put(".TP", "\\fI" .. syntax(DATADIR) .. "/vendor\\fR", "device packs (one Lua table per STM32 family)")
put(".TP", "\\fI" .. syntax(DATADIR) .. "/recipes\\fR", "one recipe per product; examples/ and recover/")
put(".SH SEE ALSO")
put("\\fBsofthsm2\\-util\\fR(1), \\fBopenocd\\fR(1), \\fBudevadm\\fR(8); \\fI" .. syntax(DOCDIR) ..
  "/README.Debian\\fR and the documentation beside it.")
writefile(OUT_MAN, table.concat(man, "\n") .. "\n")

-- ---- the bash completion --------------------------------------------------------------------
local function optset(h, values)
  local names = {}
  for _, b in ipairs(h.blocks) do
    if b.kind == "options" then
      for _, r in ipairs(b.rows) do
        if (not values) or r.value then
          for _, n in ipairs(r.names) do names[#names + 1] = n end
        end
      end
    end
  end
  return table.concat(names, " ")
end

local function case_fn(fname, values)
  local out = { fname .. "() { # COMMAND VERB -> " .. (values and "options taking a value" or "options") }
  out[#out + 1] = '    case "$1 $2" in'
  for _, c in ipairs(commands) do
    for _, v in ipairs(c.verbs) do
      if v.help then
        out[#out + 1] = string.format('    "%s %s") echo %s ;;', c.name, v.name, quote(optset(v.help, values)))
      end
    end
    out[#out + 1] = string.format('    "%s "*) echo %s ;;', c.name, quote(optset(c.help, values)))
  end
  out[#out + 1] = string.format("    *) echo %s ;;", quote(optset(top, values)))
  out[#out + 1] = "    esac"
  out[#out + 1] = "}"
  return table.concat(out, "\n")
end

local names, verbs_case = {}, { '    case "$1" in' }
for _, c in ipairs(commands) do
  names[#names + 1] = c.name
  local vs = {}
  for _, v in ipairs(c.verbs) do vs[#vs + 1] = v.name end
  if #vs > 0 then
    verbs_case[#verbs_case + 1] = string.format('    %s) echo %s ;;', c.name, quote(table.concat(vs, " ")))
  end
end
verbs_case[#verbs_case + 1] = "    esac"

local comp = {
  "# bash completion for sfirun " .. version .. ", generated from sfirun --help by packaging/gendoc.lua",
  "_sfirun_commands=" .. quote(table.concat(names, " ")),
  "_sfirun_verbs() { # COMMAND -> its verbs",
  table.concat(verbs_case, "\n"),
  "}",
  case_fn("_sfirun_options", false),
  case_fn("_sfirun_valued", true),
  [==[
_sfirun() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local cmd="" verb="" i w
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in -*) continue ;; esac
        case " $(_sfirun_valued "$cmd" "$verb") " in *" ${COMP_WORDS[i-1]} "*) continue ;; esac
        if [[ -z $cmd ]]; then
            cmd=$w
            case " $_sfirun_commands " in *" $cmd "*) ;; *) break ;; esac
        elif [[ -z $verb && -n $(_sfirun_verbs "$cmd") ]]; then
            verb=$w
        fi
    done
    COMPREPLY=()
    case " $(_sfirun_valued "$cmd" "$verb") " in
    *" $prev "*) [[ $prev == -* ]] && { mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return 0; } ;;
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_sfirun_options "$cmd" "$verb")" -- "$cur")
    elif [[ -z $cmd ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$_sfirun_commands" -- "$cur"; compgen -f -- "$cur")
    elif [[ -z $verb && -n $(_sfirun_verbs "$cmd") ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_sfirun_verbs "$cmd")" -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
    return 0
}
complete -F _sfirun -o filenames sfirun]==],
}
writefile(OUT_COMP, table.concat(comp, "\n") .. "\n")
