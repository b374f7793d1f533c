/* sfirun.c: the host, modelled on Lua's lua.c. main() runs pmain() under lua_pcall;
 * pmain preloads the sfi.core.* bindings, sets package.path to scripts/ and vendor/
 * (installed, in-tree, or $SFI_SCRIPTS), and calls sfi.cli.main.main(argv). SIGINT sets
 * a hook that raises CANCELED so every <close> handler runs on the way out. */
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sfi/sfi.h"
#include "sfib.h"

static const luaL_Reg preloads[] = {
#define SFI_MODULE(name, fn) {name, fn},
#include "sfi_modules.h"
#undef SFI_MODULE
    {NULL, NULL},
};

static lua_State *globalL;
static struct sfi_ctx *globalctx;
static volatile sig_atomic_t got_signal;

/* Hook set by the signal handler: raise CANCELED at the next Lua instruction. */
static void lstop(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    const char *why =
        got_signal == SIGTERM ? "stopped by SIGTERM" : "interrupted by the user (Ctrl-C)";
    sfib_pusherror(L, SFI_E_CANCELED, "signal", why, "");
    lua_error(L);
}

/* SIGINT and SIGTERM end a run the same way: at the next safe point, with the clean-up of a
 * failed run (probe closed, simulated chip saved, journal written). */
static void laction(int sig)
{
    got_signal = sig;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills the process */
    /* Both are signal-safe: sfi_cancel stores a sig_atomic_t, and the Lua manual allows
     * lua_sethook from a signal handler (lua.c does the same). */
    sfi_cancel(globalctx);                                                     /* NOLINT */
    lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1); /* NOLINT */
}

static int isfile(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The root holding scripts/ and vendor/: $SFI_SCRIPTS, else the installed data directory
 * next to the executable (../share/sfirun, resolved with realpath), else, in a development
 * build only (SFI_SOURCE_DIR defined), the source tree. A package build leaves SFI_SOURCE_DIR
 * out, so the shipped binary holds no build path. Raises a one-line error when none of them
 * holds the Lua library, rather than letting the first require fail with a list of paths. */
static void find_root(lua_State *L, char *out, size_t n)
{
    char probe[PATH_MAX + 64];
    const char *env = getenv("SFI_SCRIPTS");
    if (env && *env) {
        snprintf(probe, sizeof probe, "%s/scripts/sfi/flow.lua", env);
        if (!isfile(probe))
            luaL_error(L, "SFI_SCRIPTS=%s holds no scripts/sfi/ (it names the directory with "
                          "scripts/ and vendor/)", env);
        snprintf(out, n, "%s", env);
        return;
    }
    char exe[PATH_MAX];
    char data[PATH_MAX + 32] = "../share/sfirun"; /* next to the executable */
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(data, sizeof data, "%s/../share/sfirun", exe);
            char real[PATH_MAX];
            if (realpath(data, real)) {
                snprintf(probe, sizeof probe, "%s/scripts/sfi/flow.lua", real);
                /* an installed tree whose path does not fit is not used (no truncated path) */
                if (isfile(probe) && (size_t)snprintf(out, n, "%s", real) < n)
                    return;
            }
        }
    }
#ifdef SFI_SOURCE_DIR
    snprintf(probe, sizeof probe, "%s/scripts/sfi/flow.lua", SFI_SOURCE_DIR);
    if (isfile(probe)) {
        snprintf(out, n, "%s", SFI_SOURCE_DIR);
        return;
    }
#endif
    luaL_error(L, "cannot find the sfirun Lua library: %s/scripts/sfi/ is missing (is the "
                  "sfirun package installed completely? SFI_SCRIPTS may name another copy)",
               data);
}

static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    luaL_checkversion(L);
    luaL_openlibs(L);
    lua_gc(L, LUA_GCGEN, 0, 0);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const luaL_Reg *m = preloads; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 1);

    char root[PATH_MAX];
    find_root(L, root, sizeof root);
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/scripts/?.lua;%s/scripts/?/init.lua;%s/vendor/?.lua", root, root,
                    root);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, ""); /* no C modules from the environment: bindings are built in */
    lua_setfield(L, -2, "cpath");
    /* package.loaded["sfi.core.host"] = {root=, argv0=} */
    lua_getfield(L, -1, "loaded");
    lua_createtable(L, 0, 2);
    lua_pushstring(L, root);
    lua_setfield(L, -2, "root");
    lua_pushstring(L, argv[0]);
    lua_setfield(L, -2, "argv0");
    lua_setfield(L, -2, "sfi.core.host");
    lua_pop(L, 2);

    lua_getglobal(L, "require");
    lua_pushstring(L, "sfi.cli.main");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    globalL = L;
    signal(SIGINT, laction);
    signal(SIGTERM, laction);
    lua_call(L, 1, 1);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    lua_Integer code = lua_tointeger(L, -1);
    lua_pushinteger(L, code);
    return 1;
}

int main(int argc, char **argv)
{
    struct sfi_ctx *ctx;
    if (sfi_ctx_new(&ctx) != SFI_OK) {
        fprintf(stderr, "sfirun: out of memory\n");
        return 1;
    }
    globalctx = ctx;
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "sfirun: cannot create Lua state: not enough memory\n");
        sfi_ctx_free(ctx);
        return 1;
    }
    sfib_setctx(L, ctx);
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int code;
    if (status != LUA_OK) {
        /* Only errors in the host's own Lua set-up reach here: cli.main reports the rest. */
        const char *msg = luaL_tolstring(L, -1, NULL);
        fprintf(stderr, "sfirun: %s\n", msg);
        code = 1;
    } else {
        code = (int)lua_tointeger(L, -1);
    }
    lua_close(L); /* runs __gc of anything still open: probes, sessions */
    sfi_ctx_free(ctx);
    fflush(stdout);
    return code;
}
