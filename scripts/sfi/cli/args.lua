--- sfi.cli.args: the command-line parser shared by the host and every sub-command.
-- spec = { {name, "--long", "-s", value = "NAME"?, multi = true?, more = pred?, help = ""} }
-- An option with `value` takes one argument (also as --long=value); `more` lets it take a
-- second one when pred(next) is true (e.g. `--firmware FILE [ADDR]`). Raises USAGE.
local errors = require "sfi.error"
local util = require "sfi.util"

local M = {}

--- M.common: flags every command accepts.
M.common = {
  { "verbose", "--verbose", "-v", help = "more detail (repeat for trace); traceback on errors" },
  { "quiet", "--quiet", "-q", help = "errors and warnings only" },
  { "json", "--json", help = "JSON lines, one event per line" },
  { "help", "--help", "-h", help = "this help" },
}

local function usage(cmd, fmt, ...)
  errors.raise("USAGE", nil, string.format(fmt, ...) ..
    string.format(" (see 'sfirun %s--help')", cmd and (cmd .. " ") or ""))
end

--- M.parse(argv, spec, cmd, [first]) -> opts, positionals. Counts repeated flags
-- (opts.verbose = 2 for -v -v); collects multi values in lists.
function M.parse(argv, spec, cmd, first)
  local byname = {}
  -- common flags first, so a command's own spec wins (image build's -v is the image version)
  local all = {}
  for _, s in ipairs(M.common) do all[#all + 1] = s end
  for _, s in ipairs(spec) do all[#all + 1] = s end
  for _, s in ipairs(all) do
    for i = 2, #s do byname[s[i]] = s end
  end
  local opts, pos = {}, {}
  local i = first or 1
  local only_pos = false
  while i <= #argv do
    local a = argv[i]
    if only_pos or a == "-" or a:sub(1, 1) ~= "-" or a:match("^%-%d") then
      pos[#pos + 1] = a
    elseif a == "--" then
      only_pos = true
    else
      local name, inline = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local s = byname[name]
      if not s then usage(cmd, "unknown option '%s'", name) end
      local key = s[1]
      if s.value then
        local v = inline
        if v == nil then
          i = i + 1
          v = argv[i]
          if v == nil then usage(cmd, "option '%s' needs a value (%s)", name, s.value) end
        end
        if s.more and argv[i + 1] and s.more(argv[i + 1]) then
          i = i + 1
          v = { v, argv[i] }
        end
        if s.multi then
          opts[key] = opts[key] or {}
          table.insert(opts[key], v)
        else
          if opts[key] ~= nil and not s.last_wins then
            usage(cmd, "option '%s' given twice", name)
          end
          opts[key] = v
        end
      else
        if inline then usage(cmd, "option '%s' takes no value", name) end
        opts[key] = (opts[key] or 0) + 1
      end
    end
    i = i + 1
  end
  return opts, pos
end

-- Width of the option column in --help: the help text starts 3 columns further, so at least
-- two spaces always separate an option from its help (what a parser of --help relies on).
local HELP_COLUMN <const> = 28

--- M.help(spec) -> string: the option list for --help (a common flag's spelling that the
-- command takes for itself, like image build's -v, is left out of the common flag's line).
function M.help(spec)
  local out, own = {}, {}
  for _, s in ipairs(spec) do
    for i = 2, #s do own[s[i]] = true end
  end
  local function add(s, common)
    local names = {}
    for i = 2, #s do
      if not (common and own[s[i]]) then names[#names + 1] = s[i] end
    end
    local left = table.concat(names, ", ") .. (s.value and (" " .. s.value) or "")
    if #left >= HELP_COLUMN then -- GNU style: a wide option gets its help on the next line
      out[#out + 1] = "  " .. left
      out[#out + 1] = string.rep(" ", HELP_COLUMN + 3) .. (s.help or "")
    else
      out[#out + 1] = string.format("  %-" .. HELP_COLUMN .. "s %s", left, s.help or "")
    end
  end
  for _, s in ipairs(spec) do add(s) end
  for _, s in ipairs(M.common) do add(s, true) end
  return table.concat(out, "\n")
end

--- M.int(s, what) -> integer: decimal or 0x hex; raises USAGE naming `what`.
function M.int(s, what)
  local v = type(s) == "string" and util.parse_int(s, true) or nil
  if v == nil then errors.raise("USAGE", nil, string.format("%s: '%s' is not a number", what, tostring(s))) end
  return v
end

-- The flags given before a sub-command (`sfirun -v hsm info`): they hold for it too.
local global = {}

--- M.verbose() -> level or nil: the --verbose count the last setup_log applied.
function M.verbose() return global.verbose end

--- M.setup_log(opts): applies --verbose/--quiet/--json, with the flags an earlier call got
-- (the ones before the sub-command) unless opts says otherwise.
function M.setup_log(opts)
  local log = require "sfi.log"
  local verbose = opts.verbose or global.verbose
  local quiet = opts.quiet or global.quiet
  local json = opts.json or global.json
  global = { verbose = verbose, quiet = quiet, json = json }
  local level = "info"
  if quiet then level = "warn" end
  if verbose then level = verbose >= 2 and "trace" or "debug" end
  log.configure { level = level, format = json and "json" or "human" }
end

return M
