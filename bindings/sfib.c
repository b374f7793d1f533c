/* sfib.c: binding helpers: context lookup, the sfi.error object, argument checks. */
#include <stdio.h>

#include "sfib.h"

void sfib_setctx(lua_State *L, struct sfi_ctx *ctx)
{
    lua_pushlightuserdata(L, ctx);
    lua_setfield(L, LUA_REGISTRYINDEX, SFIB_CTX_KEY);
}

struct sfi_ctx *sfib_ctx(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, SFIB_CTX_KEY);
    struct sfi_ctx *ctx = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (ctx == NULL)
        luaL_error(L, "sfi engine context not initialised");
    return ctx;
}

/* tostring(err) -> "where op: CODE: msg (detail)" */
static int err_tostring(lua_State *L)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (lua_getfield(L, 1, "where") == LUA_TSTRING)
        luaL_addvalue(&b);
    else
        lua_pop(L, 1);
    if (lua_getfield(L, 1, "op") == LUA_TSTRING) {
        luaL_addvalue(&b);
        luaL_addstring(&b, ": ");
    } else {
        lua_pop(L, 1);
    }
    lua_getfield(L, 1, "code");
    luaL_addvalue(&b);
    luaL_addstring(&b, ": ");
    lua_getfield(L, 1, "msg");
    luaL_addvalue(&b);
    if (lua_getfield(L, 1, "detail") == LUA_TSTRING && lua_rawlen(L, -1) > 0) {
        luaL_addstring(&b, " (");
        luaL_addvalue(&b);
        luaL_addstring(&b, ")");
    } else {
        lua_pop(L, 1);
    }
    luaL_pushresult(&b);
    return 1;
}

void sfib_errormt(lua_State *L)
{
    if (luaL_newmetatable(L, SFIB_ERROR_MT)) {
        lua_pushcfunction(L, err_tostring);
        lua_setfield(L, -2, "__tostring");
    }
}

void sfib_pusherror(lua_State *L, int rc, const char *op, const char *msg, const char *detail)
{
    if (detail == NULL)
        detail = sfi_errdetail(sfib_ctx(L));
    lua_createtable(L, 0, 6);
    lua_pushstring(L, sfi_errname(rc));
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, rc);
    lua_setfield(L, -2, "rc");
    if (op) {
        lua_pushstring(L, op);
        lua_setfield(L, -2, "op");
    }
    lua_pushstring(L, msg ? msg : sfi_strerror(rc));
    lua_setfield(L, -2, "msg");
    lua_pushstring(L, detail);
    lua_setfield(L, -2, "detail");
    luaL_where(L, 1);
    lua_setfield(L, -2, "where");
    sfib_errormt(L);
    lua_setmetatable(L, -2);
}

/* A CANCELED error delivers the user's Ctrl-C itself: drop the host's pending hook so the
 * error handlers that run next (step logging, <close>) are not interrupted a second time. */
static void cancel_delivered(lua_State *L, int rc)
{
    if (rc == SFI_E_CANCELED)
        lua_sethook(L, NULL, 0, 0);
}

int sfib_raise(lua_State *L, int rc, const char *op)
{
    cancel_delivered(L, rc);
    sfib_pusherror(L, rc, op, NULL, NULL);
    sfi_clearerr(sfib_ctx(L));
    return lua_error(L);
}

int sfib_raisef(lua_State *L, int rc, const char *op, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cancel_delivered(L, rc);
    sfib_pusherror(L, rc, op, msg, NULL);
    sfi_clearerr(sfib_ctx(L));
    return lua_error(L);
}

lua_Integer sfib_checkrange(lua_State *L, int arg, lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = luaL_checkinteger(L, arg);
    if (v < lo || v > hi)
        luaL_argerror(L, arg, lua_pushfstring(L, "value %I out of range [%I, %I]", v, lo, hi));
    return v;
}

const char *sfib_optfield_str(lua_State *L, int idx, const char *k, const char *def)
{
    idx = lua_absindex(L, idx);
    const char *s = def;
    int t = lua_getfield(L, idx, k);
    if (t == LUA_TSTRING)
        s = lua_tostring(L, -1); /* the table keeps the string alive */
    else if (t != LUA_TNIL)
        luaL_error(L, "field '%s' must be a string, got %s", k, lua_typename(L, t));
    lua_pop(L, 1);
    return s;
}

lua_Integer sfib_optfield_int(lua_State *L, int idx, const char *k, lua_Integer def)
{
    idx = lua_absindex(L, idx);
    lua_Integer v = def;
    int t = lua_getfield(L, idx, k);
    if (t != LUA_TNIL) {
        int isnum;
        v = lua_tointegerx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "field '%s' must be an integer, got %s", k, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

lua_Integer sfib_optfield_range(lua_State *L, int idx, const char *k, lua_Integer def,
                                lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = sfib_optfield_int(L, idx, k, def);
    if (v < lo || v > hi)
        luaL_error(L, "field '%s' must be %I..%I, got %I", k, lo, hi, v);
    return v;
}

int sfib_optfield_bool(lua_State *L, int idx, const char *k, int def)
{
    idx = lua_absindex(L, idx);
    int v = def;
    int t = lua_getfield(L, idx, k);
    if (t == LUA_TBOOLEAN)
        v = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "field '%s' must be a boolean, got %s", k, lua_typename(L, t));
    lua_pop(L, 1);
    return v;
}

void sfib_newtype(lua_State *L, const char *tname, const luaL_Reg *methods,
                  const luaL_Reg *metamethods)
{
    luaL_newmetatable(L, tname);
    luaL_setfuncs(L, metamethods, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

/* ---- sfi.lock: a held sfi_lock (core.lock, h:guard()) ------------------------------------ */

#define LOCK_MT "sfi.lock"

/* lock:close(), __close, __gc: releases (idempotent) */
static int m_lock_close(lua_State *L)
{
    struct sfi_lock **slot = luaL_checkudata(L, 1, LOCK_MT);
    sfi_lock_release(*slot);
    *slot = NULL;
    return 0;
}

static int mm_lock_tostring(lua_State *L)
{
    struct sfi_lock **slot = luaL_checkudata(L, 1, LOCK_MT);
    lua_pushstring(L, *slot ? "sfi.lock (held)" : "sfi.lock (released)");
    return 1;
}

struct sfi_lock **sfib_newlock(lua_State *L)
{
    static const luaL_Reg m[] = {{"close", m_lock_close}, {NULL, NULL}};
    static const luaL_Reg mm[] = {{"__close", m_lock_close},
                                  {"__gc", m_lock_close},
                                  {"__tostring", mm_lock_tostring},
                                  {NULL, NULL}};
    if (luaL_getmetatable(L, LOCK_MT) == LUA_TNIL)
        sfib_newtype(L, LOCK_MT, m, mm);
    lua_pop(L, 1);
    struct sfi_lock **slot = lua_newuserdatauv(L, sizeof(struct sfi_lock *), 0);
    *slot = NULL;
    luaL_setmetatable(L, LOCK_MT);
    return slot;
}
