/* lsfi.c: the sfi.core module: versions, the event log, error objects, time and sleep.
 * Only scripts/sfi/ may require it (recipes use sfi.log, sfi.error, sfi.flow). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sfi/image.h"
#include "sfi/versions.h"
#include "sfib.h"

/* core.versions() -> {sfirun=, lua=, openssl=, libusb=, libp11=, libarchive=, sqlite=} */
static int l_versions(lua_State *L)
{
    struct sfi_versions v;
    sfi_versions(&v);
    lua_createtable(L, 0, 7);
    lua_pushstring(L, v.sfirun);
    lua_setfield(L, -2, "sfirun");
    lua_pushstring(L, LUA_RELEASE);
    lua_setfield(L, -2, "lua");
    lua_pushstring(L, v.openssl);
    lua_setfield(L, -2, "openssl");
    lua_pushstring(L, v.libusb);
    lua_setfield(L, -2, "libusb");
    lua_pushstring(L, v.libp11);
    lua_setfield(L, -2, "libp11");
    lua_pushstring(L, v.libarchive);
    lua_setfield(L, -2, "libarchive");
    lua_pushstring(L, v.sqlite);
    lua_setfield(L, -2, "sqlite");
    return 1;
}

static const char *const levels[] = {"error", "warn", "info", "debug", "trace", NULL};

/* core.log(level, msg) */
static int l_log(lua_State *L)
{
    int level = luaL_checkoption(L, 1, NULL, levels);
    const char *msg = luaL_checkstring(L, 2);
    sfi_event(sfib_ctx(L), (enum sfi_level)level, "log", NULL, 0, msg);
    return 0;
}

/* core.event(level, name, fields, [msg]): fields is a flat table of string/number/boolean.
 * Keys are emitted in sorted order so JSON lines are stable. */
static int l_event(lua_State *L)
{
    int level = luaL_checkoption(L, 1, NULL, levels);
    const char *name = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    const char *msg = luaL_optstring(L, 4, NULL);
    struct sfi_ctx *ctx = sfib_ctx(L);
    if ((int)sfi_log_get_level(ctx) < level)
        return 0;
    /* Collect keys into an array on the stack (index 5), then sort it with table.sort. */
    lua_newtable(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, 5, ++n);
        }
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, 5);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    lua_newtable(L); /* index 6: converted strings, kept alive until the event is written */
    /* Fields live in a userdata so nothing leaks if a conversion raises. */
    struct sfi_field *f = lua_newuserdatauv(L, sizeof *f * (size_t)(n ? n : 1), 0);
    size_t nf = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 5, i);
        const char *k = lua_tostring(L, -1);
        lua_pop(L, 1); /* key string stays alive in table 5 */
        lua_getfield(L, 3, k);
        struct sfi_field *x = &f[nf];
        memset(x, 0, sizeof *x);
        x->key = k;
        switch (lua_type(L, -1)) {
        case LUA_TNUMBER:
            if (lua_isinteger(L, -1)) {
                x->type = SFI_F_INT;
                x->i = lua_tointeger(L, -1);
            } else {
                x->type = SFI_F_NUM;
                x->d = lua_tonumber(L, -1);
            }
            break;
        case LUA_TBOOLEAN:
            x->type = SFI_F_BOOL;
            x->i = lua_toboolean(L, -1);
            break;
        default:
            x->type = SFI_F_STR;
            luaL_tolstring(L, -1, NULL);
            x->s = lua_tostring(L, -1);
            lua_rawseti(L, 6, i); /* table 6 anchors the string */
            break;
        }
        lua_pop(L, 1);
        nf++;
    }
    sfi_event(ctx, (enum sfi_level)level, name, f, nf, msg);
    return 0;
}

/* core.set_log{level=, format=} */
static int l_set_log(lua_State *L)
{
    static const char *const fmts[] = {"human", "json", NULL};
    struct sfi_ctx *ctx = sfib_ctx(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *lv = sfib_optfield_str(L, 1, "level", NULL);
    const char *fm = sfib_optfield_str(L, 1, "format", NULL);
    if (lv) {
        lua_pushstring(L, lv);
        sfi_log_set_level(ctx, (enum sfi_level)luaL_checkoption(L, -1, NULL, levels));
        lua_pop(L, 1);
    }
    if (fm) {
        lua_pushstring(L, fm);
        sfi_log_set_format(ctx, (enum sfi_log_format)luaL_checkoption(L, -1, NULL, fmts));
        lua_pop(L, 1);
    }
    return 0;
}

/* core.get_log() -> level, format */
static int l_get_log(lua_State *L)
{
    struct sfi_ctx *ctx = sfib_ctx(L);
    lua_pushstring(L, levels[sfi_log_get_level(ctx)]);
    lua_pushstring(L, sfi_log_get_format(ctx) == SFI_LOGFMT_JSON ? "json" : "human");
    return 2;
}

/* core.error(code, op, msg, [detail]) -> sfi.error (not raised) */
static int l_error(lua_State *L)
{
    const char *code = luaL_checkstring(L, 1);
    int rc = sfi_errcode(code);
    if (rc > 0)
        return luaL_argerror(L, 1, lua_pushfstring(L, "unknown error code '%s'", code));
    const char *op = luaL_optstring(L, 2, NULL);
    const char *msg = luaL_optstring(L, 3, NULL);
    const char *detail = luaL_optstring(L, 4, "");
    sfib_pusherror(L, rc, op, msg, detail);
    lua_pushnil(L); /* where: filled by the Lua side, which knows the caller's level */
    lua_setfield(L, -2, "where");
    return 1;
}

/* core.error_mt() -> the sfi.error metatable */
static int l_error_mt(lua_State *L)
{
    sfib_errormt(L);
    return 1;
}

/* core.codes() -> {"OK", "IO", ...} in code order */
static int l_codes(lua_State *L)
{
    lua_createtable(L, SFI_ERR_COUNT, 0);
    for (int i = 0; i < SFI_ERR_COUNT; i++) {
        lua_pushstring(L, sfi_errname(-i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* core.now_ms() -> integer (monotonic) */
static int l_now_ms(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)sfi_now_ms());
    return 1;
}

/* core.sleep_ms(ms): raises CANCELED on Ctrl-C */
static int l_sleep_ms(lua_State *L)
{
    lua_Integer ms = sfib_checkrange(L, 1, 0, 3600000);
    int rc = sfi_sleep_ms(sfib_ctx(L), (unsigned)ms);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "sleep");
    return 0;
}

/* core.canceled() -> boolean */
static int l_canceled(lua_State *L)
{
    lua_pushboolean(L, sfi_canceled(sfib_ctx(L)));
    return 1;
}

/* core.sha256(s) -> hex string */
static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char hex[65];
    int rc = sfi_sha256_hex(sfib_ctx(L), s, n, hex);
    if (rc)
        return sfib_raise(L, rc, "sha256");
    lua_pushlstring(L, hex, 64);
    return 1;
}

/* core.crypto_floor_ms(nbytes) -> ms: the reference the benchmarks compare against
 * (sfi_image_gcm_floor_ms). */
static int l_crypto_floor_ms(lua_State *L)
{
    lua_Integer n = sfib_checkrange(L, 1, 16, 64 << 20);
    double ms = 0;
    int rc = sfi_image_gcm_floor_ms(sfib_ctx(L), (size_t)n, &ms);
    if (rc)
        return sfib_raise(L, rc, "crypto_floor");
    lua_pushnumber(L, ms);
    return 1;
}

/* core.mkdir(path): creates the directory and its parents (mode 0700); existing is fine.
 * Raises IO naming the path. */
static int l_mkdir(lua_State *L)
{
    size_t n;
    const char *path = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, n + 1);
    memcpy(p, path, n + 1);
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c == '/' || c == '\0') {
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                return sfib_raisef(L, SFI_E_IO, "mkdir", "cannot create %s: %s", p, strerror(errno));
            *s = c;
        }
        if (c == '\0')
            break;
    }
    return 0;
}

/* core.stat(path) -> "file"|"dir"|"fifo"|"device"|"other", size | nil (no such path).
 * Follows links. */
static int l_stat(lua_State *L)
{
    struct stat sb;
    if (stat(luaL_checkstring(L, 1), &sb) != 0)
        return 0;
    const char *t = S_ISREG(sb.st_mode)    ? "file"
                    : S_ISDIR(sb.st_mode)  ? "dir"
                    : S_ISFIFO(sb.st_mode) ? "fifo"
                    : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "device"
                                                                 : "other";
    lua_pushstring(L, t);
    lua_pushinteger(L, (lua_Integer)sb.st_size);
    return 2;
}

/* core.run(argv, timeout_ms) -> {exit=, signal=, timed_out=, canceled=, stdout=, stderr=}:
 * runs a program without a shell (sfi_proc_run). Raises NOT_FOUND (no such program), IO,
 * CANCELED (the result then rides in the error's 'result' field). */
static int l_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    unsigned ms = (unsigned)sfib_checkrange(L, 2, 1, 24 * 3600 * 1000);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 255, 1, "1..255 words");
    const char *argv[256];
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        argv[i - 1] = luaL_checkstring(L, -1); /* the table keeps the strings alive */
        lua_pop(L, 1);
    }
    argv[n] = NULL;
    struct sfi_proc_result *r = lua_newuserdatauv(L, sizeof *r, 0); /* no malloc across raises */
    int rc = sfi_proc_run(sfib_ctx(L), argv, ms, r);
    if (rc != SFI_OK && rc != SFI_E_CANCELED)
        return sfib_raise(L, rc, "run");
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, r->exit_code);
    lua_setfield(L, -2, "exit");
    lua_pushinteger(L, r->signal);
    lua_setfield(L, -2, "signal");
    lua_pushboolean(L, r->timed_out);
    lua_setfield(L, -2, "timed_out");
    lua_pushboolean(L, r->canceled);
    lua_setfield(L, -2, "canceled");
    lua_pushlstring(L, r->out, r->out_len);
    lua_setfield(L, -2, "stdout");
    lua_pushlstring(L, r->err, r->err_len);
    lua_setfield(L, -2, "stderr");
    if (rc == SFI_E_CANCELED) {
        int res = lua_gettop(L);
        sfib_pusherror(L, rc, "run", NULL, NULL);
        lua_pushvalue(L, res);
        lua_setfield(L, -2, "result");
        return lua_error(L);
    }
    return 1;
}

/* core.mkdtemp(dir, prefix) -> path: a new private directory (0700) dir/prefixXXXXXX.
 * Raises IO naming the directory. */
static int l_mkdtemp(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1), *prefix = luaL_checkstring(L, 2);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, dir);
    luaL_addchar(&b, '/');
    luaL_addstring(&b, prefix);
    luaL_addstring(&b, "XXXXXX");
    luaL_pushresult(&b);
    char *tmpl = (char *)lua_tostring(L, -1); /* our own fresh string: mkdtemp edits it */
    if (!mkdtemp(tmpl))
        return sfib_raisef(L, SFI_E_IO, "mkdtemp", "cannot create a directory in %s: %s", dir,
                           strerror(errno));
    return 1;
}

/* core.now_ns() -> integer (monotonic nanoseconds, for benchmarks) */
static int l_now_ns(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)sfi_now_ns());
    return 1;
}

/* core.lock(path, timeout_ms) -> lock (with <close>): an exclusive lock across threads and
 * processes. Raises BUSY (held past the timeout), CANCELED, ACCESS, IO. */
static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    unsigned ms = (unsigned)sfib_checkrange(L, 2, 0, 3600000);
    struct sfi_lock **slot = sfib_newlock(L);
    int rc = sfi_lock_acquire(sfib_ctx(L), path, ms, slot);
    return rc ? sfib_raise(L, rc, "lock") : 1;
}

static const luaL_Reg l_core[] = {
    {"lock", l_lock},         {"stat", l_stat},         {"run", l_run},
    {"mkdtemp", l_mkdtemp},
    {"sha256", l_sha256}, {"crypto_floor_ms", l_crypto_floor_ms}, {"now_ns", l_now_ns},
    {"mkdir", l_mkdir},
    {"versions", l_versions}, {"log", l_log},         {"event", l_event},
    {"set_log", l_set_log},   {"get_log", l_get_log}, {"error", l_error},
    {"error_mt", l_error_mt}, {"codes", l_codes},     {"now_ms", l_now_ms},
    {"sleep_ms", l_sleep_ms}, {"canceled", l_canceled}, {NULL, NULL},
};

int luaopen_sfi_core(lua_State *L)
{
    luaL_newlib(L, l_core);
    return 1;
}
