-- vendor/st/diagnosis.lua: what public reports of failed SFI installs show, as data for
-- `sfirun explain` and the failure decoder of an install. Each rule names the facts it needs
-- (all must hold), the likely cause, its source, and the next thing to try. These are
-- observations of what went wrong and what fixed it, not ST's definition of a result code.
-- Matchers: dev_id, bl_min, bl_max, protocol, result (an RSS complete value that was seen),
-- line (text in the log), probe (text in the probe name), voltage_above (volts).
-- kind: "cause" (a likely reason for the failure) or "info" (a fact worth knowing).
return {
  {
    id = "hash-unsupported", kind = "cause",
    when = { dev_id = 0x450, line = "SFI with hash is not supported" },
    cause = "the image carries area hashes and this STM32H74x/75x RSS (bootloader 0x90, rev V) " ..
      "rejects them",
    source = "ST's own message; user report 2025-11 (tests/data/seeds/forum-h753-sfi-hash.txt)",
    fix = "rebuild without hash: sfirun image build ... --hash 0 (TPC 2.20 gives no way to turn " ..
      "it off; TPC 2.9 wrote protocol-1 images without hash)",
  },
  {
    id = "h753-cc000007", kind = "cause",
    when = { dev_id = 0x450, result = 0xCC000007, protocol = 2 },
    cause = "the RSS refused the image or its licence: on STM32H753 (bootloader 0x90) this value " ..
      "was seen with protocol-2 images from TPC 2.20, and the thread found the hashed image to be " ..
      "the cause; a protocol-1 image without hash from TPC 2.9 installed its first part (0x80)",
    source = "user report 2025-11 (tests/data/seeds/forum-h753-sfi-hash.txt)",
    fix = "rebuild the image without hash (sfirun image build --hash 0); if it still fails, " ..
      "check that the licence is for this chip and this firmware key",
  },
  {
    id = "cc000007", kind = "cause",
    when = { result = 0xCC000007 },
    cause = "ST prints \"RSS internal system error or License is invalid\" for this value: the " ..
      "RSS did not accept the licence or the image it protects",
    source = "ST's log text (both user reports)",
    fix = "check the licence was made for this chip's certificate and the image's key; check the " ..
      "image suits this RSS (protocol, hash): sfirun preflight",
  },
  {
    id = "h7ab-erratum", kind = "cause",
    when = { dev_id = 0x480, bl_max = 0x91 },
    cause = "STM32H7A/B with bootloader below 0x92 has an SFI erratum (ES0478 2.2.3): the RSS " ..
      "fails or corrupts the flash (0x16 seen with bootloader 0x91)",
    source = "ES0478 2.2.3 as cited by ST; user report 2023 (tests/data/seeds/forum-h7ab-sfi-license.txt)",
    fix = "use a chip with bootloader 0x92 or later (fixed from RSS 3.1.0, revision X)",
  },
  {
    id = "result-0x16", kind = "info",
    when = { result = 0x16 },
    cause = "0x16 was seen on an STM32H7B3 with bootloader 0x91 (the SFI erratum of those parts)",
    source = "user report 2023 (tests/data/seeds/forum-h7ab-sfi-license.txt)",
  },
  {
    id = "part-ok", kind = "info",
    when = { result = 0x80 },
    cause = "0x80 after a part that is not the last one means the part was installed",
    source = "user report 2025-11: part 1 of 2 with a protocol-1 image, then part 2 ran",
  },
  {
    id = "core-id-lost", kind = "cause",
    when = { line = "Unable to get core ID" },
    cause = "after the RSS ran, the debug port stayed silent for several connects; ST's tool " ..
      "gives up after a few tries",
    source = "user report 2025-11",
    fix = "reconnect with more tries and alternating connect modes and resets (sfirun's default " ..
      "'alternate' strategy, --set tries=10); if it never answers, power-cycle the board",
  },
  {
    id = "security-unverified", kind = "info",
    when = { line = "Could not verify security state after last chunk" },
    cause = "ST's tool could not read the security state back after the last part: the chip was " ..
      "not reachable yet; the install itself reported success",
    source = "user report 2023 (STM32H7B3, bootloader 0x90)",
    fix = "read the option bytes again after a reconnect to confirm SECURITY = 1",
  },
  {
    id = "voltage-high", kind = "cause",
    when = { voltage_above = 3.6 },
    cause = "the probe measured the target supply above 3.6 V, the STM32H7's operating maximum",
    source = "STM32H7 datasheets (VDD 1.62 V to 3.6 V)",
    fix = "check the board supply and the probe's target voltage reference",
  },
  {
    id = "old-tool", kind = "info",
    when = { line = "is not supported with v2.10.0" },
    cause = "that CubeProgrammer version refuses SFI on STM32H7 and names the one to use",
    source = "user report 2025-11",
  },
}
