--- sfi.pg_report: renders sfi.journal_db.report() as text, JSON, CSV (one table) or one
-- static HTML file (tables and an inline SVG chart of licences issued per day; no script, no
-- server, nothing fetched).
local M = {}

--- M.TABLES: the report's tables and their columns, in output order.
M.TABLES = {
  counts = { "cm", "station", "image", "day", "requests", "issued", "unknown", "failed" },
  duplicates = { "uid", "issued", "stations", "images", "rows" },
  unknown = { "station", "seq", "time", "uid", "token", "counter_before" },
  tokens = { "token", "stations", "provisioned", "highest", "lowest", "decrements", "issued",
             "unknown", "not_spent", "failed", "missing", "status" },
}
local ORDER <const> = { "counts", "duplicates", "unknown", "tokens" }

--- M.json(v) -> text: JSON with arrays (a table with [1] or an empty table in a list slot).
function M.json(v)
  local t = type(v)
  if t == "table" then
    if v[1] ~= nil or next(v) == nil then
      local parts = {}
      for i = 1, #v do parts[i] = M.json(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = M.json(k) .. ":" .. M.json(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function (ch) return string.format("\\u%04x", ch:byte()) end) .. '"'
  elseif v == nil then
    return "null"
  end
  return tostring(v)
end

local function csvcell(v)
  if v == nil then return "" end
  v = tostring(v)
  if v:find('[,"\r\n]') then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end

--- M.csv(rep, [name]) -> text: one table (default "counts") as CSV with a header line.
function M.csv(rep, name)
  name = name or "counts"
  local cols = assert(M.TABLES[name], "no such report table")
  local out = { table.concat(cols, ",") }
  for _, r in ipairs(rep[name]) do
    local cells = {}
    for i, k in ipairs(cols) do cells[i] = csvcell(r[k]) end
    out[#out + 1] = table.concat(cells, ",")
  end
  return table.concat(out, "\r\n") .. "\r\n"
end

local function grid(cols, rows)
  local w = {}
  for i, k in ipairs(cols) do w[i] = #k end
  local cells = {}
  for n, r in ipairs(rows) do
    cells[n] = {}
    for i, k in ipairs(cols) do
      local s = r[k] == nil and "-" or tostring(r[k])
      cells[n][i] = s
      if #s > w[i] then w[i] = #s end
    end
  end
  local function line(vals)
    local p = {}
    for i, s in ipairs(vals) do p[i] = s .. string.rep(" ", w[i] - #s) end
    return "  " .. table.concat(p, "  "):gsub("%s+$", "")
  end
  local out = { line(cols) }
  for _, c in ipairs(cells) do out[#out + 1] = line(c) end
  return table.concat(out, "\n")
end

local TITLES <const> = {
  counts = "Licence requests per CM, station, image and day (UTC)",
  duplicates = "Chips (UIDs) that received more than one licence",
  unknown = "Requests with unknown outcome (reconcile them at their station)",
  tokens = "Counter reconciliation per token (decrements seen vs licence rows)",
}

--- M.text(rep) -> text: every table with a title, then the totals.
function M.text(rep)
  local out = {}
  for _, name in ipairs(ORDER) do
    out[#out + 1] = TITLES[name] .. ":"
    out[#out + 1] = #rep[name] > 0 and grid(M.TABLES[name], rep[name]) or "  (none)"
    out[#out + 1] = ""
  end
  local t = rep.totals
  out[#out + 1] = string.format("%d station(s), %d request(s): %d licence(s) issued, %d unknown, " ..
    "%d failed; %d chip(s) licensed more than once", t.stations, t.requests, t.issued, t.unknown,
    t.failed, t.duplicates)
  return table.concat(out, "\n") .. "\n"
end

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

-- bars of licences issued per day (all stations), with the day under each bar
local function chart(rep)
  local days, per = {}, {}
  for _, r in ipairs(rep.counts) do
    if not per[r.day] then
      per[r.day] = { issued = 0, other = 0 }
      days[#days + 1] = r.day
    end
    per[r.day].issued = per[r.day].issued + r.issued
    per[r.day].other = per[r.day].other + r.requests - r.issued
  end
  table.sort(days)
  if #days == 0 then return "<p>No requests yet.</p>" end
  local top = 1
  for _, d in ipairs(days) do top = math.max(top, per[d].issued + per[d].other) end
  local bw, gap, h, left, bottom = 28, 10, 180, 40, 60
  local width = left + #days * (bw + gap) + gap
  local out = { string.format('<svg width="%d" height="%d" ' ..
    'role="img" aria-label="licences issued per day">', width, h + bottom + 10) }
  out[#out + 1] = string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#444"/>', left, h + 10,
    width, h + 10)
  out[#out + 1] = string.format('<text x="%d" y="20" font-size="11" text-anchor="end">%d</text>', left - 4, top)
  for i, d in ipairs(days) do
    local x = left + gap + (i - 1) * (bw + gap)
    local hi = math.floor(per[d].issued / top * (h - 10) + 0.5)
    local ho = math.floor(per[d].other / top * (h - 10) + 0.5)
    out[#out + 1] = string.format('<rect x="%d" y="%d" width="%d" height="%d" fill="#3a7"><title>%s: ' ..
      '%d issued</title></rect>', x, h + 10 - hi, bw, hi, esc(d), per[d].issued)
    if ho > 0 then
      out[#out + 1] = string.format('<rect x="%d" y="%d" width="%d" height="%d" fill="#d94"><title>' ..
        '%s: %d not issued or unknown</title></rect>', x, h + 10 - hi - ho, bw, ho, esc(d), per[d].other)
    end
    out[#out + 1] = string.format('<text x="%d" y="%d" font-size="10" transform="rotate(60 %d %d)">%s</text>',
      x + 4, h + 22, x + 4, h + 22, esc(d))
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

--- M.html(rep, [title]) -> text: one self-contained HTML page.
function M.html(rep, title)
  title = title or "sfirun licence journal report"
  local out = { "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
    "<title>" .. esc(title) .. "</title>",
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}" ..
    "td,th{border:1px solid #bbb;padding:2px 8px;text-align:left}th{background:#eee}" ..
    ".bad{color:#b00;font-weight:bold}</style></head><body>",
    "<h1>" .. esc(title) .. "</h1>" }
  local t = rep.totals
  out[#out + 1] = string.format("<p>%d station(s), %d request(s): %d licence(s) issued, %d unknown, " ..
    "%d failed; %d chip(s) licensed more than once. Schema version %d.</p>", t.stations, t.requests,
    t.issued, t.unknown, t.failed, t.duplicates, rep.schema)
  out[#out + 1] = "<h2>Licence requests per day</h2>"
  out[#out + 1] = chart(rep)
  for _, name in ipairs(ORDER) do
    out[#out + 1] = "<h2>" .. esc(TITLES[name]) .. "</h2>"
    local rows = rep[name]
    if #rows == 0 then
      out[#out + 1] = "<p>(none)</p>"
    else
      local h = {}
      for _, k in ipairs(M.TABLES[name]) do h[#h + 1] = "<th>" .. esc(k) .. "</th>" end
      out[#out + 1] = "<table><tr>" .. table.concat(h) .. "</tr>"
      for _, r in ipairs(rows) do
        local cells = {}
        for _, k in ipairs(M.TABLES[name]) do
          local bad = k == "status" and r.missing and r.missing ~= 0
          cells[#cells + 1] = (bad and '<td class="bad">' or "<td>") ..
            esc(r[k] == nil and "" or r[k]) .. "</td>"
        end
        out[#out + 1] = "<tr>" .. table.concat(cells) .. "</tr>"
      end
      out[#out + 1] = "</table>"
    end
  end
  out[#out + 1] = "</body></html>"
  return table.concat(out, "\n") .. "\n"
end

return M
