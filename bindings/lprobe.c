/* lprobe.c: sfi.core.probe: the sfi.probe userdata over the engine's probe layer. The chip
 * description for the "sim" driver arrives as a table built by scripts/sfi/probe.lua from the
 * device packs; this file only copies it into struct sfi_sim_cfg. */
#include <limits.h>
#include <string.h>

#include "sfi/probe.h"
#include "sfi/stlink.h"
#include "sfib.h"

#define PROBE_MT "sfi.probe"

struct lprobe {
    struct sfi_probe *p;   /* NULL <=> closed */
};

static uint32_t u32field(lua_State *L, int idx, const char *k, uint32_t def)
{
    lua_Integer v = sfib_optfield_int(L, idx, k, def);
    if (v < 0 || v > 0xFFFFFFFFLL)
        luaL_error(L, "sim field '%s' out of range", k);
    return (uint32_t)v;
}

/* A device fact of the simulated part: the pack gives it (scripts/sfi/probe.lua), the binding
 * has no default of its own. */
static uint32_t u32req(lua_State *L, int idx, const char *k)
{
    if (lua_getfield(L, idx, k) != LUA_TNUMBER)
        luaL_error(L, "sim field '%s' is missing (the device pack gives it)", k);
    lua_pop(L, 1);
    return u32field(L, idx, k, 0);
}

/* Reads {start=, size=} entries of the list at field k into starts/sizes. Returns the count. */
static unsigned regions(lua_State *L, int idx, const char *k, uint32_t *starts, uint32_t *sizes,
                        unsigned max)
{
    unsigned n = 0;
    if (lua_getfield(L, idx, k) == LUA_TTABLE) {
        lua_Integer len = luaL_len(L, -1);
        if (len > (lua_Integer)max)
            luaL_error(L, "sim field '%s' has more than %u entries", k, max);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_geti(L, -1, i);
            starts[n] = u32field(L, -1, "start", 0);
            sizes[n] = u32field(L, -1, "size", 0);
            n++;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return n;
}

static void simcfg(lua_State *L, int idx, struct sfi_sim_cfg *c)
{
    static const char *const variants[] = {"h74x", "h7ab", "h72x", NULL};
    memset(c, 0, sizeof *c);
    idx = lua_absindex(L, idx);
    c->part = sfib_optfield_str(L, idx, "part", NULL);
    lua_getfield(L, idx, "variant");
    c->variant = (enum sfi_sim_variant)luaL_checkoption(L, -1, "h74x", variants);
    lua_pop(L, 1);
    c->dev_id = u32req(L, idx, "dev_id");
    c->rev_id = u32req(L, idx, "rev_id");
    c->idcode_res = u32field(L, idx, "idcode_res", 0);
    c->cpuid = u32req(L, idx, "cpuid");
    c->dpidr = u32req(L, idx, "dpidr");
    c->flash_kb = u32field(L, idx, "flash_kb", 0);
    c->nbanks = regions(L, idx, "banks", c->bank_start, c->bank_size, 2);
    c->sector_size = u32field(L, idx, "sector_size", 0);
    c->flash_word = u32field(L, idx, "flash_word", 0);
    c->flash_regs = u32req(L, idx, "flash_regs");
    c->idcode_addr = u32req(L, idx, "idcode_addr");
    c->fsize_addr = u32field(L, idx, "fsize_addr", 0);
    c->uid_addr = u32field(L, idx, "uid_addr", 0);
    c->bl_addr = u32field(L, idx, "bl_addr", 0);
    uint32_t st[SFI_SIM_MAX_RAM], sz[SFI_SIM_MAX_RAM];
    c->nram = regions(L, idx, "ram", st, sz, SFI_SIM_MAX_RAM);
    for (unsigned i = 0; i < c->nram; i++) {
        c->ram[i].start = st[i];
        c->ram[i].size = sz[i];
    }
    c->sys_start = u32req(L, idx, "sys_start");
    c->sys_size = u32req(L, idx, "sys_size");
    c->bl_version = (uint8_t)u32req(L, idx, "bl");
    size_t ul = 0;
    const char *uid = sfib_optfield_str(L, idx, "uid", NULL);
    if (uid) {
        lua_getfield(L, idx, "uid");
        uid = lua_tolstring(L, -1, &ul);
        if (ul != 12)
            luaL_error(L, "sim field 'uid' must be 12 bytes");
        memcpy(c->uid, uid, 12);
        lua_pop(L, 1);
    }
    if (lua_getfield(L, idx, "ob_default") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_Integer off = lua_tointeger(L, -2);
            if (off < 0 || off % 4 || off / 4 >= SFI_SIM_OB_WORDS || !lua_isinteger(L, -1))
                luaL_error(L, "sim field 'ob_default': bad entry at offset %d", (int)off);
            c->ob_default[off / 4] = (uint32_t)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    c->rss_mailbox = u32field(L, idx, "rss_mailbox", 0);
    c->rss_magic = u32field(L, idx, "rss_magic", 0);
    c->rss_result = u32field(L, idx, "rss_result", 0);
    c->cert_addr = u32field(L, idx, "cert_addr", 0);
    c->unreachable_after_reset = u32field(L, idx, "unreachable_after_reset", 0);
    c->unreachable_after_rss = u32field(L, idx, "unreachable_after_rss", 0);
    c->usb_error_every = u32field(L, idx, "usb_error_every", 0);
    c->delay_ms = u32field(L, idx, "delay_ms", 0);
    c->debug_disabled = u32field(L, idx, "debug_disabled", 0);
    c->opt_busy_stuck = u32field(L, idx, "opt_busy_stuck", 0);
    if (lua_getfield(L, idx, "timing") == LUA_TTABLE) {
        int t = lua_gettop(L);
        struct sfi_sim_timing *tm = &c->timing;
        tm->sector_erase_us = u32field(L, t, "sector_erase_us", 0);
        tm->bank_erase_us = u32field(L, t, "bank_erase_us", 0);
        tm->word_program_us = u32field(L, t, "word_program_us", 0);
        tm->ob_program_us = u32field(L, t, "ob_program_us", 0);
        tm->regression_us = u32field(L, t, "regression_us", 0);
        tm->reset_us = u32field(L, t, "reset_us", 0);
        tm->connect_us = u32field(L, t, "connect_us", 0);
        tm->rss_part_us = u32field(L, t, "rss_part_us", 0);
        tm->rss_per_kib_us = u32field(L, t, "rss_per_kib_us", 0);
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "time_scale");
    c->time_scale = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    if (c->time_scale < 0 || c->time_scale > 1000)
        luaL_error(L, "sim field 'time_scale' out of range");
    if (lua_getfield(L, idx, "power_loss_at") == LUA_TNUMBER)
        c->power_loss_at_op = u32field(L, idx, "power_loss_at", 0);
    else if (lua_type(L, -1) == LUA_TSTRING)
        c->power_loss_at_name = lua_tostring(L, -1);   /* kept alive by the table */
    lua_pop(L, 1);
    c->state_file = sfib_optfield_str(L, idx, "state", NULL);
    c->acr_reset = u32field(L, idx, "acr", 0);
    if (lua_getfield(L, idx, "regs") == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        if (n > SFI_SIM_MAX_REGS)
            luaL_error(L, "sim field 'regs': more than %d registers", SFI_SIM_MAX_REGS);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_geti(L, -1, i) != LUA_TTABLE)
                luaL_error(L, "sim field 'regs': entry %d is not a table", (int)i);
            int t = lua_gettop(L);
            struct sfi_sim_reg *r = &c->regs[c->nregs++];
            r->addr = u32field(L, t, "addr", 0);
            r->reset = u32field(L, t, "reset", 0);
            r->wmask = u32field(L, t, "wmask", 0);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

/* Up to max strings of the list at field k (NULL-terminated when shorter); the strings stay
 * alive in the caller's table. */
static void strlist(lua_State *L, int idx, const char *k, const char **out, size_t max)
{
    if (lua_getfield(L, idx, k) == LUA_TTABLE) {
        lua_Integer len = luaL_len(L, -1);
        if (len > (lua_Integer)max)
            luaL_error(L, "gdb field '%s' has more than %d entries", k, (int)max);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_geti(L, -1, i);
            out[i - 1] = luaL_checkstring(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

/* The per-mode commands of field k ({normal=, hotplug=, ...} by the names in names). */
static void modemap(lua_State *L, int idx, const char *k, const char *const *names,
                    const char **out)
{
    if (lua_getfield(L, idx, k) == LUA_TTABLE)
        for (size_t i = 0; names[i]; i++)
            out[i] = sfib_optfield_str(L, lua_gettop(L), names[i], NULL);
    lua_pop(L, 1);
}

static const char *const connect_modes[] = {"normal", "hotplug", "under-reset", NULL};
static const char *const reset_kinds[] = {"sw", "hw", "core", NULL};

/* The gdb driver's table (built by scripts/sfi/gdb.lua from the URI and the dialect). */
static void gdbcfg(lua_State *L, int idx, struct sfi_gdb_cfg *g)
{
    memset(g, 0, sizeof *g);
    idx = lua_absindex(L, idx);
    g->host = sfib_optfield_str(L, idx, "host", NULL);
    g->tty = sfib_optfield_str(L, idx, "tty", NULL);
    g->port = (unsigned)sfib_optfield_int(L, idx, "port", 0);
    g->baud = (unsigned)sfib_optfield_int(L, idx, "baud", 0);
    g->timeout_ms = (unsigned)sfib_optfield_int(L, idx, "timeout_ms", 0);
    g->monitor_timeout_ms = (unsigned)sfib_optfield_int(L, idx, "monitor_timeout_ms", 0);
    g->dialect = sfib_optfield_str(L, idx, "dialect", NULL);
    g->speed = sfib_optfield_str(L, idx, "speed", NULL);
    strlist(L, idx, "attach", g->attach, SFI_GDB_MAX_ATTACH);
    strlist(L, idx, "lost", g->lost, SFI_GDB_MAX_LOST);
    strlist(L, idx, "failed", g->failed, SFI_GDB_MAX_LOST);
    modemap(L, idx, "connect", connect_modes, g->connect);
    modemap(L, idx, "reset", reset_kinds, g->reset);
    lua_getfield(L, idx, "no_x");
    g->no_x = lua_toboolean(L, -1);
    lua_getfield(L, idx, "reattach");
    g->reattach = lua_toboolean(L, -1);
    lua_pop(L, 2);
}

struct sfi_probe *sfib_checkprobe(lua_State *L, int idx)
{
    struct lprobe *u = luaL_checkudata(L, idx, PROBE_MT);
    if (!u->p)
        luaL_error(L, "attempt to use a closed probe");
    return u->p;
}

static struct sfi_probe *checkprobe(lua_State *L)
{
    return sfib_checkprobe(L, 1);
}

/* connect_modes, reset_kinds (above): names in enum order of enum sfi_connect and enum
 * sfi_reset, also exported to Lua. */

static enum sfi_connect checkconnect(lua_State *L, int arg)
{
    return (enum sfi_connect)luaL_checkoption(L, arg, "normal", connect_modes);
}

/* rdp={reg=, shift=, bits=, open=, flash_lo=, flash_hi=}: the pack's read-out protection (each
 * value must fit its field here; the engine checks that they agree). */
static void rdpcfg(lua_State *L, int idx, struct sfi_probe_rdp *r)
{
    r->reg = (uint32_t)sfib_optfield_range(L, idx, "reg", 0, 0, 0xFFFFFFFFLL);
    r->shift = (unsigned)sfib_optfield_range(L, idx, "shift", 0, 0, 31);
    r->bits = (unsigned)sfib_optfield_range(L, idx, "bits", 0, 0, 32);
    r->open = (uint32_t)sfib_optfield_range(L, idx, "open", 0, 0, 0xFFFFFFFFLL);
    r->flash_lo = (uint32_t)sfib_optfield_range(L, idx, "flash_lo", 0, 0, 0xFFFFFFFFLL);
    r->flash_hi = (uint32_t)sfib_optfield_range(L, idx, "flash_hi", 0, 0, 0xFFFFFFFFLL);
}

/* probe.open{driver=, serial=, port=, speed_khz=, connect=, record=, sim={...}, gdb={...},
 * rdp={...}} -> sfi.probe */
static int l_open(lua_State *L)
{
    struct sfi_probe_cfg cfg;
    struct sfi_sim_cfg sc;
    struct sfi_gdb_cfg gc;
    luaL_checktype(L, 1, LUA_TTABLE);
    memset(&cfg, 0, sizeof cfg);
    cfg.driver = sfib_optfield_str(L, 1, "driver", "sim");
    cfg.serial = sfib_optfield_str(L, 1, "serial", NULL);
    cfg.record = sfib_optfield_str(L, 1, "record", NULL);
    cfg.speed_khz = (unsigned)sfib_optfield_int(L, 1, "speed_khz", 0);
    /* the engine range-checks the port (sfi_stlink_tcp_addr: INVALID naming it) */
    lua_Integer port = sfib_optfield_int(L, 1, "port", 0);
    cfg.tcp_port = port < 0 || port > (lua_Integer)UINT_MAX ? UINT_MAX : (unsigned)port;
    lua_getfield(L, 1, "connect");
    cfg.connect = checkconnect(L, lua_gettop(L));
    lua_pop(L, 1);
    lua_getfield(L, 1, "no_connect");
    cfg.no_connect = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "sim") == LUA_TTABLE) {
        simcfg(L, -1, &sc);
        cfg.sim = &sc;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "gdb") == LUA_TTABLE) {
        gdbcfg(L, -1, &gc);
        cfg.gdb = &gc;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "rdp") == LUA_TTABLE)
        rdpcfg(L, lua_gettop(L), &cfg.rdp);
    lua_pop(L, 1);
    struct lprobe *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->p = NULL;
    luaL_setmetatable(L, PROBE_MT);
    int rc = sfi_probe_open(sfib_ctx(L), &cfg, &u->p);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "probe.open");
    return 1;
}

static void found(void *ud, const struct sfi_probe_info *info)
{
    lua_State *L = ud;
    lua_createtable(L, 0, 3);
    lua_pushstring(L, info->driver);
    lua_setfield(L, -2, "driver");
    lua_pushstring(L, info->serial);
    lua_setfield(L, -2, "serial");
    lua_pushstring(L, info->desc);
    lua_setfield(L, -2, "desc");
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
}

/* probe.list() -> { {driver, serial, desc}... } */
static int l_list(lua_State *L)
{
    lua_newtable(L);
    sfi_probe_scan(sfib_ctx(L), found, L);
    return 1;
}

/* p:close() */
static int m_close(lua_State *L)
{
    struct lprobe *u = luaL_checkudata(L, 1, PROBE_MT);
    sfi_probe_close(u->p);
    u->p = NULL;
    return 0;
}

static uint32_t checkaddr(lua_State *L, int arg)
{
    return (uint32_t)sfib_checkrange(L, arg, 0, 0xFFFFFFFFLL);
}

/* p:read(addr, n) -> string */
static int m_read(lua_State *L)
{
    struct sfi_probe *p = checkprobe(L);
    uint32_t addr = checkaddr(L, 2);
    size_t n = (size_t)sfib_checkrange(L, 3, 0, 64 * 1024 * 1024);
    luaL_Buffer b;
    char *buf = luaL_buffinitsize(L, &b, n);
    int rc = sfi_probe_read_mem(p, addr, buf, n);
    if (rc)
        return sfib_raise(L, rc, "probe.read");
    luaL_pushresultsize(&b, n);
    return 1;
}

/* p:write(addr, s) */
static int m_write(lua_State *L)
{
    struct sfi_probe *p = checkprobe(L);
    uint32_t addr = checkaddr(L, 2);
    size_t n;
    const char *s = luaL_checklstring(L, 3, &n);
    int rc = sfi_probe_write_mem(p, addr, s, n);
    return rc ? sfib_raise(L, rc, "probe.write") : 0;
}

/* p:read32(addr) -> integer */
static int m_read32(lua_State *L)
{
    struct sfi_probe *p = checkprobe(L);
    uint32_t v;
    int rc = sfi_probe_read32(p, checkaddr(L, 2), &v);
    if (rc)
        return sfib_raise(L, rc, "probe.read32");
    lua_pushinteger(L, v);
    return 1;
}

/* p:write32(addr, v) */
static int m_write32(lua_State *L)
{
    struct sfi_probe *p = checkprobe(L);
    uint32_t addr = checkaddr(L, 2);
    int rc = sfi_probe_write32(p, addr, (uint32_t)sfib_checkrange(L, 3, 0, 0xFFFFFFFFLL));
    return rc ? sfib_raise(L, rc, "probe.write32") : 0;
}

/* p:reset([kind]) kind = "sw" | "hw" | "core" */
static int m_reset(lua_State *L)
{
    struct sfi_probe *p = checkprobe(L);
    int rc = sfi_probe_reset(p, (enum sfi_reset)luaL_checkoption(L, 2, "sw", reset_kinds));
    return rc ? sfib_raise(L, rc, "probe.reset") : 0;
}

/* p:connect([mode]) mode = "normal" | "hotplug" | "under-reset" */
static int m_connect(lua_State *L)
{
    struct sfi_probe *p = checkprobe(L);
    int rc = sfi_probe_connect(p, checkconnect(L, 2));
    return rc ? sfib_raise(L, rc, "probe.connect") : 0;
}

/* p:halt() */
static int m_halt(lua_State *L)
{
    int rc = sfi_probe_halt(checkprobe(L));
    return rc ? sfib_raise(L, rc, "probe.halt") : 0;
}

/* p:resume() */
static int m_resume(lua_State *L)
{
    int rc = sfi_probe_resume(checkprobe(L));
    return rc ? sfib_raise(L, rc, "probe.resume") : 0;
}

/* p:connected() -> boolean */
static int m_connected(lua_State *L)
{
    lua_pushboolean(L, sfi_probe_is_connected(checkprobe(L)));
    return 1;
}

/* p:describe() -> {driver, serial, desc} */
static int m_describe(lua_State *L)
{
    struct sfi_probe_info info;
    sfi_probe_info(checkprobe(L), &info);
    lua_settop(L, 0);
    lua_newtable(L);
    found(L, &info);
    lua_rawgeti(L, -1, 1);
    return 1;
}

/* p:sim_ops() -> integer | nil: debug operations the simulated chip counted */
static int m_sim_ops(lua_State *L)
{
    struct sfi_sim *sim = sfi_probe_sim(checkprobe(L));
    if (!sim)
        return 0;
    lua_pushinteger(L, (lua_Integer)sfi_sim_ops(sim));
    return 1;
}

/* p:sim_chip_ms() -> number | nil: the chip time the simulator's timing model charged */
static int m_sim_chip_ms(lua_State *L)
{
    struct sfi_sim *sim = sfi_probe_sim(checkprobe(L));
    if (!sim)
        return 0;
    lua_pushnumber(L, (double)sfi_sim_chip_us(sim) / 1000.0);
    return 1;
}

/* tostring(p) -> "sfi.probe (sim)" | "sfi.probe (closed)" */
static int mm_tostring(lua_State *L)
{
    struct lprobe *u = luaL_checkudata(L, 1, PROBE_MT);
    if (u->p)
        lua_pushfstring(L, PROBE_MT " (%s)", sfi_probe_driver_name(u->p));
    else
        lua_pushliteral(L, PROBE_MT " (closed)");
    return 1;
}

static const luaL_Reg l_funcs[] = {{"open", l_open}, {"list", l_list}, {NULL, NULL}};
static const luaL_Reg m_funcs[] = {
    {"close", m_close},       {"read", m_read},       {"write", m_write},
    {"read32", m_read32},     {"write32", m_write32}, {"reset", m_reset},
    {"connect", m_connect},   {"halt", m_halt},       {"resume", m_resume},
    {"connected", m_connected}, {"describe", m_describe}, {"sim_ops", m_sim_ops},
    {"sim_chip_ms", m_sim_chip_ms},
    {NULL, NULL}};
static const luaL_Reg mm_funcs[] = {
    {"__close", m_close}, {"__gc", m_close}, {"__tostring", mm_tostring}, {NULL, NULL}};

/* Sets t[field] = {names...} for a NULL-terminated name list (t at the stack top). */
static void setnames(lua_State *L, const char *field, const char *const *names)
{
    lua_newtable(L);
    for (int i = 0; names[i]; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, field);
}

int luaopen_sfi_core_probe(lua_State *L)
{
    sfib_newtype(L, PROBE_MT, m_funcs, mm_funcs);
    luaL_newlib(L, l_funcs);
    setnames(L, "connect_modes", connect_modes); /* probe.connect_modes = {"normal", ...} */
    setnames(L, "reset_kinds", reset_kinds);     /* probe.reset_kinds = {"sw", "hw", "core"} */
    lua_pushinteger(L, SFI_STLINK_TCP_PORT);     /* stlink-server's port when a URI gives none */
    lua_setfield(L, -2, "STLINK_TCP_PORT");
    return 1;
}
