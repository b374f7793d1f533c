/* lhsm.c: the sfi.core.hsm module: PKCS#11 licence token sessions (sfi.hsm.session).
 * Journaling and providers live in scripts/sfi/hsm.lua and license.lua. */
#include <stdlib.h>
#include <string.h>

#include "sfi/hsm.h"
#include "sfib.h"

#define MT "sfi.hsm.session"

struct lhsm {
    struct sfi_hsm *h; /* NULL <=> closed */
};

static struct sfi_hsm *check(lua_State *L)
{
    struct lhsm *u = luaL_checkudata(L, 1, MT);
    if (!u->h)
        luaL_error(L, "attempt to use a closed hsm session");
    return u->h;
}

static const char *bytes(lua_State *L, int idx, const char *k, size_t want)
{
    lua_getfield(L, idx, k);
    size_t n = 0;
    const char *s = lua_tolstring(L, -1, &n);
    if (!s || n != want)
        luaL_error(L, "field '%s' must be a %d-byte string", k, (int)want);
    lua_pop(L, 1); /* the string stays alive: the table holds it */
    return s;
}

/* Applies opts.module_env {NAME=value} to the process environment (before C_Initialize:
 * e.g. SOFTHSM2_CONF). No effect on a module that another open session already initialized. */
static void module_env(lua_State *L)
{
    if (lua_getfield(L, 1, "module_env") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "module_env: names and values must be strings");
            setenv(lua_tostring(L, -2), lua_tostring(L, -1), 1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

/* hsm.open{uri=, module=, token=, pin_env=, pin_file=, module_env=} -> session */
static int l_open(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    module_env(L);
    struct sfi_hsm_cfg cfg = {
        .uri = sfib_optfield_str(L, 1, "uri", NULL),
        .module = sfib_optfield_str(L, 1, "module", NULL),
        .token = sfib_optfield_str(L, 1, "token", NULL),
        .pin_env = sfib_optfield_str(L, 1, "pin_env", NULL),
        .pin_file = sfib_optfield_str(L, 1, "pin_file", NULL),
        .lock_dir = sfib_optfield_str(L, 1, "lock_dir", NULL),
        .lock_timeout_ms = (unsigned)sfib_optfield_int(L, 1, "lock_timeout_ms", 0),
    };
    lua_getfield(L, 1, "pin");
    if (!lua_isnil(L, -1))
        return luaL_error(L, "hsm.open: no 'pin' field: use pin_env or pin_file");
    lua_pop(L, 1);
    struct lhsm *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->h = NULL;
    luaL_setmetatable(L, MT);
    int rc = sfi_hsm_open(sfib_ctx(L), &cfg, &u->h);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "hsm.open");
    return 1;
}

/* h:close(), __close, __gc */
static int m_close(lua_State *L)
{
    struct lhsm *u = luaL_checkudata(L, 1, MT);
    sfi_hsm_close(u->h);
    u->h = NULL;
    return 0;
}

/* h:guard() -> lock (with <close>): the token's guard (sfi_hsm_guard). Raises BUSY, CANCELED. */
static int m_guard(lua_State *L)
{
    struct sfi_hsm *h = check(L);
    struct sfi_lock **slot = sfib_newlock(L);
    int rc = sfi_hsm_guard(h, slot);
    return rc ? sfib_raise(L, rc, "hsm.guard") : 1;
}

static const char *const states[] = {"empty", "partial", "provisioned"};

/* h:info() -> {state=, token=, fwid=, counter=, counter_objects=, ca=} */
static int m_info(lua_State *L)
{
    struct sfi_hsm_info in;
    int rc = sfi_hsm_info(check(L), &in);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "hsm.info");
    lua_createtable(L, 0, 6);
    lua_pushstring(L, states[in.state]);
    lua_setfield(L, -2, "state");
    lua_pushstring(L, in.token);
    lua_setfield(L, -2, "token");
    lua_pushstring(L, in.serial);
    lua_setfield(L, -2, "serial");
    lua_pushstring(L, in.module);
    lua_setfield(L, -2, "module");
    if (in.fwid[0]) {
        lua_pushstring(L, in.fwid);
        lua_setfield(L, -2, "fwid");
    }
    if (in.counter_objects > 0) {
        lua_pushinteger(L, in.counter);
        lua_setfield(L, -2, "counter");
    }
    lua_pushinteger(L, in.counter_objects);
    lua_setfield(L, -2, "counter_objects");
    if (in.has_ca) {
        lua_pushlstring(L, (const char *)in.ca_pub, 64);
        lua_setfield(L, -2, "ca");
    }
    return 1;
}

/* h:counter() -> integer */
static int m_counter(lua_State *L)
{
    uint32_t v;
    int rc = sfi_hsm_counter(check(L), &v);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "hsm.counter");
    lua_pushinteger(L, v);
    return 1;
}

/* h:provision{key=16B, nonce=16B IV field, fwid=, max=, ca=64B X||Y} */
static int m_provision(lua_State *L)
{
    struct sfi_hsm *h = check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct sfi_hsm_prov p = {
        .key16 = (const uint8_t *)bytes(L, 2, "key", 16),
        .iv16 = (const uint8_t *)bytes(L, 2, "nonce", 16),
        .ca_pub64 = (const uint8_t *)bytes(L, 2, "ca", 64),
        .fwid = sfib_optfield_str(L, 2, "fwid", NULL),
    };
    lua_getfield(L, 2, "max");
    lua_Integer max = luaL_checkinteger(L, -1);
    if (max < 0 || max > 0x7fffffff)
        return luaL_error(L, "field 'max' must be 0..2^31-1");
    lua_pop(L, 1);
    p.max = (uint32_t)max;
    int rc = sfi_hsm_provision(h, &p);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "hsm.provision");
    return 0;
}

/* h:license(cert136, [tag16]) -> licence136, counter_after, withheld */
static int m_license(lua_State *L)
{
    struct sfi_hsm *h = check(L);
    size_t n = 0, tl = 0;
    const char *cert = luaL_checklstring(L, 2, &n);
    const char *tag = luaL_optlstring(L, 3, NULL, &tl);
    luaL_argcheck(L, !tag || tl == SFI_HSM_TAG_SIZE, 3, "a request tag is 16 bytes");
    if (n != SFI_CERT_SIZE)
        return sfib_raisef(L, SFI_E_FORMAT, "hsm.license", "certificate is %zu bytes, not %d",
                           n, SFI_CERT_SIZE);
    uint8_t lic[SFI_LIC_SIZE];
    uint32_t after = 0;
    unsigned withheld = 0;
    int rc = sfi_hsm_license(h, (const uint8_t *)cert, (const uint8_t *)tag, lic, &after,
                             &withheld);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "hsm.license");
    lua_pushlstring(L, (const char *)lic, sizeof lic);
    lua_pushinteger(L, after);
    lua_pushinteger(L, withheld);
    return 3;
}

/* hsm.new_tag() -> 16 random bytes: a licence request's tag */
static int l_new_tag(lua_State *L)
{
    uint8_t t[SFI_HSM_TAG_SIZE];
    if (sfi_hsm_new_tag(t) != SFI_OK)
        return sfib_raisef(L, SFI_E_CRYPTO, "hsm.new_tag", "no random bytes");
    lua_pushlstring(L, (const char *)t, sizeof t);
    return 1;
}

#define TAGS_MT "sfi.hsm.tags"

/* The engine's tag array, freed by __gc if building the Lua table raises. */
struct ltags {
    struct sfi_hsm_tag *t;
};

static int tags_gc(lua_State *L)
{
    struct ltags *u = luaL_checkudata(L, 1, TAGS_MT);
    free(u->t);
    u->t = NULL;
    return 0;
}

/* h:tags() -> { {value=, tag=16 bytes}... }: the request tags on the token */
static int m_tags(lua_State *L)
{
    struct sfi_hsm *h = check(L);
    struct ltags *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->t = NULL;
    luaL_setmetatable(L, TAGS_MT);
    size_t n = 0;
    int rc = sfi_hsm_tags(h, &box->t, &n);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "hsm.tags");
    struct sfi_hsm_tag *t = box->t;
    lua_createtable(L, n > 0x7fffffff ? 0 : (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, t[i].value);
        lua_setfield(L, -2, "value");
        lua_pushlstring(L, (const char *)t[i].tag, SFI_HSM_TAG_SIZE);
        lua_setfield(L, -2, "tag");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(box->t);
    box->t = NULL;
    return 1;
}

static int mm_tostring(lua_State *L)
{
    struct lhsm *u = luaL_checkudata(L, 1, MT);
    lua_pushstring(L, u->h ? MT " (open)" : MT " (closed)");
    return 1;
}

int luaopen_sfi_core_hsm(lua_State *L)
{
    static const luaL_Reg l[] = {{"open", l_open}, {"new_tag", l_new_tag}, {NULL, NULL}};
    static const luaL_Reg m[] = {{"close", m_close},         {"info", m_info},
                                 {"counter", m_counter},     {"provision", m_provision},
                                 {"license", m_license},     {"guard", m_guard},
                                 {"tags", m_tags},
                                 {NULL, NULL}};
    static const luaL_Reg mm[] = {
        {"__close", m_close}, {"__gc", m_close}, {"__tostring", mm_tostring}, {NULL, NULL}};
    static const luaL_Reg tags_mm[] = {{"__gc", tags_gc}, {NULL, NULL}};
    sfib_newtype(L, MT, m, mm);
    sfib_newtype(L, TAGS_MT, l + 2, tags_mm); /* no methods */
    luaL_newlib(L, l);
    lua_pushinteger(L, SFI_HSM_TAG_WINDOW);
    lua_setfield(L, -2, "TAG_WINDOW");
    return 1;
}
