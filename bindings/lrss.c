/* lrss.c: sfi.core.rss: attaches the simulated RSS (sim/rss.c) to the chip behind a "sim"
 * probe, and gives the chip its identity (key pair and certificate signed by the simulator
 * CA) when it has none. Only scripts/sfi/probe.lua calls it. */
#include <string.h>

#include "sfi/license.h"
#include "sfi/probe.h"
#include "sfi/rss.h"
#include "sfib.h"

#define RSS_MT "sfi.rss"

struct lrss {
    struct sfi_rss *r; /* NULL <=> closed */
};

static const char *const code_names[SFI_RSS_NCODES] = {
    "ok", "part_ok", "license", "header", "hash", "protocol", "area", "program", "token", "state",
};

static uint32_t u32(lua_State *L, int idx, const char *k)
{
    lua_Integer v = sfib_optfield_int(L, idx, k, -1);
    if (v < 0 || v > 0xFFFFFFFFLL)
        luaL_error(L, "rss field '%s' missing or out of range", k);
    return (uint32_t)v;
}

/* Sets the chip identity from its UID unless the chip already has one (state file). */
static void identity(lua_State *L, struct sfi_sim *sim, int idx)
{
    uint8_t priv[32], cert[SFI_SIM_CERT_SIZE];
    if (sfi_sim_get_identity(sim, priv, cert) == SFI_OK) {
        sfi_wipe(priv, sizeof priv);
        return;
    }
    size_t pemlen;
    lua_getfield(L, idx, "ca_key_pem");
    const char *pem = luaL_checklstring(L, -1, &pemlen);
    lua_getfield(L, idx, "product_id");
    const char *product = luaL_checkstring(L, -1); /* the pack's (scripts/sfi/probe.lua) */
    lua_pop(L, 1);
    const struct sfi_sim_cfg *c = sfi_sim_config(sim);
    int rc = sfi_chip_identity_cert(sfib_ctx(L), pem, pemlen, product, c->uid, sizeof c->uid,
                                    priv, cert);
    if (rc == SFI_OK)
        sfi_sim_set_identity(sim, priv, cert);
    sfi_wipe(priv, sizeof priv);
    lua_pop(L, 1);
    if (rc != SFI_OK)
        sfib_raise(L, rc, "rss.identity");
}

/* rss.attach(probe, cfg) -> sfi.rss. cfg = {license_addr, header_addr, ram_limit, token_addr,
 * token_slots, protocols = {1, 2}, hash = "unsupported"|"optional"|"required", corrupt = bool,
 * ob_map = {9 offsets or -1}, codes = {ok=, part_ok=, license=, ...}, ca_key_pem, product_id} */
static int l_attach(lua_State *L)
{
    static const char *const hashes[] = {"unsupported", "optional", "required", NULL};
    struct sfi_probe *p = sfib_checkprobe(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct sfi_sim *sim = sfi_probe_sim(p);
    if (sim == NULL)
        return luaL_argerror(L, 1, "not a simulated probe");
    struct sfi_rss_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.license_addr = u32(L, 2, "license_addr");
    cfg.header_addr = u32(L, 2, "header_addr");
    cfg.ram_limit = u32(L, 2, "ram_limit");
    cfg.token_addr = u32(L, 2, "token_addr");
    cfg.token_slots = u32(L, 2, "token_slots");
    lua_pushstring(L, sfib_optfield_str(L, 2, "hash", "optional"));
    cfg.hash = (enum sfi_rss_hash)luaL_checkoption(L, -1, NULL, hashes);
    lua_pop(L, 1);
    cfg.corrupt = sfib_optfield_bool(L, 2, "corrupt", 0);
    luaL_checktype(L, (lua_getfield(L, 2, "protocols"), -1), LUA_TTABLE);
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
        lua_Integer v = luaL_checkinteger(L, -1);
        if (v < 0 || v > 31)
            luaL_error(L, "rss protocol %d out of range", (int)v);
        cfg.protocols |= 1u << v;
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    luaL_checktype(L, (lua_getfield(L, 2, "ob_map"), -1), LUA_TTABLE);
    for (int i = 0; i < SFI_RSS_OB_ROWS; i++) {
        lua_rawgeti(L, -1, i + 1);
        cfg.ob_map[i] = (int)luaL_optinteger(L, -1, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    luaL_checktype(L, (lua_getfield(L, 2, "codes"), -1), LUA_TTABLE);
    for (int i = 0; i < SFI_RSS_NCODES; i++)
        cfg.codes[i] = u32(L, -1, code_names[i]);
    lua_pop(L, 1);

    identity(L, sim, 2);
    struct lrss *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->r = NULL;
    luaL_setmetatable(L, RSS_MT);
    int rc = sfi_rss_new(sfib_ctx(L), sim, &cfg, &u->r);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "rss.attach");
    return 1;
}

/* r:last() -> code name, text: what the last RSS run did */
static int m_last(lua_State *L)
{
    struct lrss *u = luaL_checkudata(L, 1, RSS_MT);
    if (u->r == NULL)
        return luaL_error(L, "attempt to use a closed rss");
    lua_pushstring(L, code_names[sfi_rss_last_code(u->r)]);
    lua_pushstring(L, sfi_rss_last(u->r));
    return 2;
}

/* r:close(): detaches the RSS (also __close / __gc) */
static int m_close(lua_State *L)
{
    struct lrss *u = luaL_checkudata(L, 1, RSS_MT);
    sfi_rss_free(u->r);
    u->r = NULL;
    return 0;
}

static const luaL_Reg l_rss[] = {{"attach", l_attach}, {NULL, NULL}};
static const luaL_Reg m_rss[] = {{"last", m_last}, {"close", m_close}, {NULL, NULL}};
static const luaL_Reg mm_rss[] = {{"__gc", m_close}, {"__close", m_close}, {NULL, NULL}};

int luaopen_sfi_core_rss(lua_State *L)
{
    sfib_newtype(L, RSS_MT, m_rss, mm_rss);
    luaL_newlib(L, l_rss);
    return 1;
}
