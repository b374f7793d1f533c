-- vendor/st/cubeprogrammer.lua: how ST's STM32_Programmer_CLI is asked for a licence from an
-- STM32HSM card, as data (what changes between tool versions is fixed here, not in C).
-- Source: STM32CubeProgrammer CLI help / UM2237 HSM commands as listed in
-- ../reference (sfi-domain.md §3): -hsmgetlicensefromcertifbin|-hsmglfcb <cert.bin>
-- <license.bin> [slot=N] [protocol=static]; -hsmgetcounter [slot=N]. Not verified on hardware
-- by this project: a user with the card and a changed syntax edits the word lists below.
return {
  cli = "STM32_Programmer_CLI",   -- found in PATH unless a path is given
  licence_from_cert = { "-hsmglfcb", "{cert}", "{out}", "slot={slot}" },
  counter = { "-hsmgetcounter", "slot={slot}" },
  default_slot = 1,               -- "PC integrated SC reader" (ST's default)
}
