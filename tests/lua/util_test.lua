-- util_test.lua: sfi.util's one integer parser and one file reader, as the CLI, the recipe
-- parameters, the probe knobs and the log reader use them.
local T = require "sfi.test"
local util = require "sfi.util"

T.case("parse_int: decimal and 0x hex, signs, blanks; nil for anything else", function ()
  T.eq(util.parse_int("42"), 42)
  T.eq(util.parse_int("0x1E000"), 0x1E000)
  T.eq(util.parse_int(" 0X10 "), 16)
  T.eq(util.parse_int("-3"), -3)
  T.eq(util.parse_int("-3", true), nil)
  T.eq(util.parse_int(7), 7)
  T.eq(util.parse_int(7.0), 7)
  for _, bad in ipairs { "", "12abc", "1.5", "0x", "0xG1", "1e3", "- 3" } do
    T.eq(util.parse_int(bad), nil, bad)
  end
  T.eq(util.parse_int(1.5), nil)
  T.eq(util.parse_int({}), nil)
end)

T.case("parse_int: a value that does not fit in 63 bits is nil, never wrapped around", function ()
  T.eq(util.parse_int("9223372036854775807"), math.maxinteger)
  T.eq(util.parse_int("0x7FFFFFFFFFFFFFFF"), math.maxinteger)
  T.eq(util.parse_int("0x000000000000000000FF"), 255) -- leading zeros are not digits that count
  for _, big in ipairs { "9223372036854775808", "999999999999999999999", "0x8000000000000000",
      "0xFFFFFFFFFFFFFFFF", "0x" .. string.rep("F", 20), "-99999999999999999999" } do
    T.eq(util.parse_int(big), nil, big)
  end
end)

T.case("the CLI, a recipe parameter and a probe knob name the bad number", function ()
  local args = require "sfi.cli.args"
  T.eq(args.int("0x483", "--devid"), 0x483)
  local e = T.raises("USAGE", args.int, "0x48z", "--devid")
  assert(e.msg:find("--devid: '0x48z' is not a number", 1, true), e.msg)
  local probe = require "sfi.probe"
  e = T.raises("USAGE", probe.open, "sim:stm32h753?delay_ms=ten")
  assert(e.msg:find("'ten' is not a number", 1, true), e.msg)
end)

T.case("read_file: a size cap and no special files", function ()
  local dir = T.tmpdir()
  T.writefile(dir .. "/f.bin", "abcdef")
  T.eq(util.read_file(dir .. "/f.bin", "test file"), "abcdef")
  local e = T.raises("FORMAT", util.read_file, dir .. "/f.bin", "test file", 5)
  assert(e.msg:find("test file '" .. dir .. "/f.bin' is larger than 5 bytes", 1, true), e.msg)
  e = T.raises("FORMAT", util.read_file, "/dev/zero", "test file")
  assert(e.msg:find("is a device, not a file", 1, true), e.msg)
  T.raises("FORMAT", util.read_file, dir, "test file")
  T.raises("NOT_FOUND", util.read_file, dir .. "/none", "test file")
end)

T.summary()
