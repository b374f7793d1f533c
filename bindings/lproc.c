/* lproc.c: sfi.core.proc: child processes read line by line while they run (the gang runs one
 * sfirun per slot), and whether a file descriptor is a terminal. Over sfi_child_* (sfi.h). */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "sfib.h"

#define CHILD_MT "sfi.child"

struct lchild {
    struct sfi_child *c;
};

static struct lchild *checkchild(lua_State *L, int idx)
{
    struct lchild *u = luaL_checkudata(L, idx, CHILD_MT);
    if (u->c == NULL)
        luaL_error(L, "attempt to use a closed child");
    return u;
}

/* The strings of the list at idx into out (NULL-terminated); the table keeps them alive. */
static void strings(lua_State *L, int idx, const char **out, int max, int min)
{
    lua_Integer n = luaL_len(L, idx);
    luaL_argcheck(L, n >= min && n < max, idx, "too few or too many words");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        out[i - 1] = luaL_checkstring(L, -1);
        lua_pop(L, 1);
    }
    out[n] = NULL;
}

/* proc.spawn(argv, [env]) -> child. argv[1] "self" runs this sfirun again. env: list of
 * "NAME=VALUE" added to (or replacing in) the inherited environment. Raises NOT_FOUND, IO. */
static int l_spawn(lua_State *L)
{
    const char *argv[256], *env[64];
    luaL_checktype(L, 1, LUA_TTABLE);
    strings(L, 1, argv, 256, 1);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        strings(L, 2, env, 64, 0);
    } else {
        env[0] = NULL;
    }
    if (strcmp(argv[0], "self") == 0)
        argv[0] = "/proc/self/exe";
    struct lchild *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->c = NULL;
    luaL_setmetatable(L, CHILD_MT);
    int rc = sfi_child_spawn(sfib_ctx(L), argv, env, &u->c);
    return rc ? sfib_raise(L, rc, "spawn") : 1;
}

/* proc.poll({child...}, ms) -> number ready (0 on timeout); never raises CANCELED. */
static int l_poll(lua_State *L)
{
    struct sfi_child *kids[256];
    luaL_checktype(L, 1, LUA_TTABLE);
    unsigned ms = (unsigned)sfib_checkrange(L, 2, 0, 600000);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n <= 256, 1, "at most 256 children");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        struct lchild *u = luaL_testudata(L, -1, CHILD_MT);
        kids[i - 1] = u ? u->c : NULL;
        lua_pop(L, 1);
    }
    lua_pushinteger(L, sfi_child_poll(kids, (size_t)n, ms));
    return 1;
}

static void add_line(void *ud, const char *s, size_t n)
{
    lua_State *L = ud;
    lua_pushlstring(L, s, n);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

/* c:read() -> {lines...}, ended: the complete lines there are now, without blocking. */
static int m_read(lua_State *L)
{
    struct lchild *u = checkchild(L, 1);
    lua_newtable(L);
    int ended = sfi_child_read(u->c, add_line, L);
    lua_pushboolean(L, ended);
    return 2;
}

/* c:signal("INT"|"TERM"|"KILL") to the child's process group */
static int m_signal(lua_State *L)
{
    static const char *const names[] = {"INT", "TERM", "KILL", NULL};
    static const int sigs[] = {SIGINT, SIGTERM, SIGKILL};
    struct lchild *u = checkchild(L, 1);
    sfi_child_signal(u->c, sigs[luaL_checkoption(L, 2, NULL, names)]);
    return 0;
}

/* c:done() -> false | true, exit code (-1 after a signal), signal number */
static int m_done(lua_State *L)
{
    struct lchild *u = checkchild(L, 1);
    int code, sig;
    if (!sfi_child_done(u->c, &code, &sig)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushboolean(L, 1);
    lua_pushinteger(L, code);
    lua_pushinteger(L, sig);
    return 3;
}

static int m_pid(lua_State *L)
{
    lua_pushinteger(L, sfi_child_pid(checkchild(L, 1)->c));
    return 1;
}

/* c:close(): closes the pipe (a running child is not killed) */
static int m_close(lua_State *L)
{
    struct lchild *u = luaL_checkudata(L, 1, CHILD_MT);
    sfi_child_free(u->c);
    u->c = NULL;
    return 0;
}

/* proc.isatty(fd) -> boolean */
static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static const luaL_Reg l_funcs[] = {
    {"spawn", l_spawn}, {"poll", l_poll}, {"isatty", l_isatty}, {NULL, NULL}};
static const luaL_Reg m_funcs[] = {{"read", m_read},   {"signal", m_signal}, {"done", m_done},
                                   {"pid", m_pid},     {"close", m_close},   {NULL, NULL}};
static const luaL_Reg mm_funcs[] = {{"__close", m_close}, {"__gc", m_close}, {NULL, NULL}};

int luaopen_sfi_core_proc(lua_State *L)
{
    sfib_newtype(L, CHILD_MT, m_funcs, mm_funcs);
    luaL_newlib(L, l_funcs);
    return 1;
}
