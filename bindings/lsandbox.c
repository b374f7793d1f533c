/* lsandbox.c: sfi.core.sandbox, the separate Lua state a signed bundle's code runs in.
 * Nothing is shared between the bundle's state and the library's: every value that crosses
 * is copied (nil, booleans, numbers, strings, plain tables) or replaced by a proxy
 * (functions both ways; library objects, i.e. tables with a metatable and userdata, as opaque
 * proxies whose every access goes through the library's policy function). The bundle's state
 * has its own allocator with a cap and an instruction hook, so both count only bundle work.
 * The first violation (LIMIT or SANDBOX) is sticky: bundle code cannot catch it away.
 * The bundle's code runs on a thread of its own, one side at a time: the library's thread waits
 * while bundle code runs and serves the bundle's calls into the library; the bundle's thread
 * waits while library code runs and serves the library's calls into the bundle. A call stuck
 * inside one C function (a pathological string.find) cannot be interrupted by a hook: the
 * library's thread stops waiting once the CPU or time limit plus 1 s has passed, records
 * LIMIT, abandons the bundle's state and thread (lowered to idle priority) and goes on, so the
 * probe and token close cleanly. See docs/bundles.md. */
#define _GNU_SOURCE /* SCHED_IDLE */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sfib.h"

#define SB_MT "sfi.sandbox"
#define SB_EVERY 100    /* instructions between two hook calls */
#define SB_MAXDEPTH 100 /* nesting of a table copied across */
#define SB_MAXNEST 150  /* calls nested across the boundary */
#define SB_STACK (3 * SB_MAXDEPTH + 40)
#define SB_MAXOBJ 50000  /* library objects or bundle functions held across (memory bound) */

/* Slots of the per-sandbox tables. Host side (one table in the host registry): values the
 * bundle holds proxies of (id -> value, value -> id), proxies of bundle functions (id ->
 * closure) and the policy function. Bundle side (its registry): the same for its values. */
enum { T_VALS = 1, T_IDS, T_PROXIES, T_META };

struct sandbox {
    lua_State *B;    /* the bundle's state; NULL once closed */
    lua_State *curB; /* the bundle thread that called the library (a coroutine may) */
    lua_State *curH; /* the host thread that called into the bundle */
    size_t used, peak, max_memory;
    int mem_strike;
    long long instructions, max_instructions;
    double max_cpu;                /* CPU seconds of the bundle's thread */
    long long deadline_ms;         /* monotonic; 0 = none */
    char deadline_what[160];
    int nest, closing, ticks;
    atomic_int vcode; /* 0, SFI_E_LIMIT, SFI_E_SANDBOX or SFI_E_CANCELED */
    atomic_llong vset_ms; /* when it was recorded */
    char vmsg[256];
    int vref;        /* host registry: the violation's sfi.error */
    int href;        /* host registry: the host-side tables */
    int selfref;     /* host registry: this userdata (upvalue of host-side proxies) */
    lua_Integer next_hid, next_bid;
    /* the values being passed: a range of a stack of the other state */
    lua_State *xsrc;
    int xfirst, xn;
    lua_Integer xid;
    const char *lsrc, *lname; /* sb:load's chunk */
    size_t lsrc_n;
    struct sfi_ctx *ctx; /* for Ctrl-C */
    /* the bundle's thread and whose turn it is (under mu) */
    pthread_t thread;
    int thread_on;
    clockid_t clock;
    int clock_ok;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn;
    lua_State *req_L; /* the call to make on the other side: lua_pcall(req_L, req_n) */
    int req_n, req_status;
    atomic_int abandoned;
};

enum { W_NONE, W_B_RUN, W_B_DONE, W_H_RUN, W_H_DONE, W_QUIT };
#define SB_ABANDONED 1000 /* not a Lua status */

/* ---- clocks ------------------------------------------------------------------------------ */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CPU seconds of the bundle's thread (all of it is bundle work: the library's calls run on the
 * library's thread). */
static double cpu_used(const struct sandbox *sb)
{
    struct timespec ts;
    if (!sb->clock_ok || clock_gettime(sb->clock, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- violations -------------------------------------------------------------------------- */

static void violate(struct sandbox *sb, int code, const char *msg)
{
    if (atomic_load(&sb->vcode))
        return; /* the first one is the run's result */
    snprintf(sb->vmsg, sizeof sb->vmsg, "%s", msg);
    sb->vset_ms = mono_ms();
    atomic_store(&sb->vcode, code);
}

/* Checks the clocks and counters; records a violation when one is over. */
static void check_limits(struct sandbox *sb)
{
    char msg[256];
    if (sb->max_instructions > 0 && sb->instructions > sb->max_instructions) {
        snprintf(msg, sizeof msg, "the bundle ran more than %lld Lua instructions (--max-instructions)",
                 sb->max_instructions);
        violate(sb, SFI_E_LIMIT, msg);
    } else if (sb->max_cpu > 0 && cpu_used(sb) > sb->max_cpu) {
        snprintf(msg, sizeof msg, "the bundle used more than %g s of CPU time (--max-cpu)",
                 sb->max_cpu);
        violate(sb, SFI_E_LIMIT, msg);
    } else if (sb->deadline_ms > 0 && mono_ms() > sb->deadline_ms) {
        violate(sb, SFI_E_LIMIT, sb->deadline_what);
    } else if (sb->ctx && sfi_canceled(sb->ctx)) {
        violate(sb, SFI_E_CANCELED, "interrupted by the user (Ctrl-C)");
    }
}

/* Raises the violation inside the bundle (a string: the host raises its own sfi.error). The
 * thread's hook then fires at every instruction, so a pcall in the bundle cannot go on. */
static void hook(lua_State *L, lua_Debug *ar);
static int raise_in_bundle(struct sandbox *sb, lua_State *L)
{
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
    lua_pushfstring(L, "%s: %s", sfi_errname(sb->vcode ? sb->vcode : SFI_E_SANDBOX),
                    sb->vcode ? sb->vmsg : "the bundle is closed");
    return lua_error(L);
}

/* Pushes the violation's sfi.error (made once, so err.step set by flow stays). */
static void push_violation(struct sandbox *sb, lua_State *H)
{
    if (sb->vref != LUA_NOREF) {
        lua_rawgeti(H, LUA_REGISTRYINDEX, sb->vref);
        return;
    }
    sfib_pusherror(H, sb->vcode, "bundle", sb->vmsg, "");
    lua_pushnil(H);
    lua_setfield(H, -2, "where");
    lua_pushvalue(H, -1);
    sb->vref = luaL_ref(H, LUA_REGISTRYINDEX);
}

static int raise_in_host(struct sandbox *sb, lua_State *H)
{
    push_violation(sb, H);
    return lua_error(H);
}

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct sandbox *sb = *(struct sandbox **)lua_getextraspace(L);
    if (sb->vcode || sb->closing)
        raise_in_bundle(sb, L);
    sb->instructions += SB_EVERY;
    /* the clocks every 64 calls; the instruction count at once */
    int over = sb->max_instructions > 0 && sb->instructions > sb->max_instructions;
    if (over || (++sb->ticks & 63) == 0)
        check_limits(sb);
    if (sb->vcode)
        raise_in_bundle(sb, L);
}

/* ---- the bundle's allocator -------------------------------------------------------------- */

/* Live bytes only: garbage freed by the collector never counts. Lua answers a failed
 * allocation with an emergency collection and one more try; only a second failure in a row
 * (the memory is really in use) is the LIMIT. */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct sandbox *sb = ud;
    if (ptr == NULL)
        osize = 0;
    if (nsize == 0) {
        free(ptr);
        sb->used -= osize;
        return NULL;
    }
    if (nsize > osize && sb->max_memory > 0 && sb->used - osize + nsize > sb->max_memory) {
        /* a second failure in a row, or a block larger than the whole cap */
        if ((sb->mem_strike || nsize - osize > sb->max_memory) && !sb->closing) {
            char msg[160];
            snprintf(msg, sizeof msg, "the bundle used more than %zu MiB of memory (--max-memory)",
                     sb->max_memory >> 20);
            violate(sb, SFI_E_LIMIT, msg);
        }
        sb->mem_strike = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p == NULL)
        return NULL;
    sb->used = sb->used - osize + nsize;
    if (sb->used > sb->peak)
        sb->peak = sb->used;
    if (nsize > osize)
        sb->mem_strike = 0;
    return p;
}

/* ---- tables of ids ----------------------------------------------------------------------- */

static struct sandbox *tosb(lua_State *L, int idx)
{
    struct sandbox **u = luaL_checkudata(L, idx, SB_MT);
    if (*u == NULL)
        luaL_error(L, "attempt to use a closed sandbox");
    return *u;
}

static int b_call(lua_State *L);
static int h_call(lua_State *L);

/* Pushes the host-side table `slot`. */
static void htable(struct sandbox *sb, lua_State *H, int slot)
{
    lua_rawgeti(H, LUA_REGISTRYINDEX, sb->href);
    lua_rawgeti(H, -1, slot);
    lua_remove(H, -2);
}

static const char BKEY = 'b'; /* bundle registry: its tables */

static void btable(lua_State *B, int slot)
{
    lua_rawgetp(B, LUA_REGISTRYINDEX, &BKEY);
    lua_rawgeti(B, -1, slot);
    lua_remove(B, -2);
}

/* Host value at idx is a proxy of a bundle function: its bundle id, else 0. */
static lua_Integer h_unwrap(struct sandbox *sb, lua_State *H, int idx)
{
    if (lua_tocfunction(H, idx) != h_call)
        return 0;
    lua_getupvalue(H, idx, 1);
    struct sandbox **u = lua_touserdata(H, -1);
    int mine = u != NULL && *u == sb;
    lua_pop(H, 1);
    if (!mine)
        return 0;
    lua_getupvalue(H, idx, 2);
    lua_Integer id = lua_tointeger(H, -1);
    lua_pop(H, 1);
    return id;
}

/* Bundle value at idx is a proxy of a host value: its host id, else 0. */
static lua_Integer b_unwrap(lua_State *B, int idx)
{
    int t = lua_type(B, idx);
    if (t == LUA_TFUNCTION && lua_tocfunction(B, idx) == b_call) {
        lua_getupvalue(B, idx, 2);
        lua_Integer id = lua_tointeger(B, -1);
        lua_pop(B, 1);
        return id;
    }
    if (t == LUA_TUSERDATA && lua_getmetatable(B, idx)) {
        btable(B, T_META);
        int proxy = lua_rawequal(B, -1, -2);
        lua_pop(B, 2);
        if (proxy)
            return *(lua_Integer *)lua_touserdata(B, idx);
    }
    return 0;
}

/* A host value the bundle gets a proxy of (rather than a copy). */
static int h_byref(lua_State *H, int idx)
{
    int t = lua_type(H, idx);
    if (t == LUA_TFUNCTION || t == LUA_TUSERDATA || t == LUA_TTHREAD)
        return 1;
    if (t == LUA_TTABLE && lua_getmetatable(H, idx)) {
        lua_pop(H, 1);
        return 1;
    }
    return 0;
}

/* Registers the value at idx of state L (host or bundle: `host`) and everything it holds
 * that crosses by reference, giving each an id. Runs in L's own context (it allocates).
 * vis: absolute index of a table of tables already walked. */
static void reg(struct sandbox *sb, lua_State *L, int host, int idx, int vis, int depth)
{
    idx = lua_absindex(L, idx);
    int t = lua_type(L, idx);
    if (depth > SB_MAXDEPTH)
        luaL_error(L, "a table passed between the bundle and the library is nested too deeply");
    if (host ? h_byref(L, idx) : t == LUA_TFUNCTION) {
        if (host ? h_unwrap(sb, L, idx) != 0 : b_unwrap(L, idx) != 0)
            return;
        if (host)
            htable(sb, L, T_IDS);
        else
            btable(L, T_IDS);
        lua_pushvalue(L, idx);
        if (lua_rawget(L, -2) == LUA_TNIL) {
            if ((host ? sb->next_hid : sb->next_bid) >= SB_MAXOBJ) {
                violate(sb, SFI_E_LIMIT, "the bundle holds more than 50000 library objects "
                        "or passes more than 50000 functions to the library");
                luaL_error(L, "%s", sb->vmsg);
            }
            lua_Integer id = host ? ++sb->next_hid : ++sb->next_bid;
            lua_pop(L, 1);
            lua_pushvalue(L, idx);
            lua_pushinteger(L, id);
            lua_rawset(L, -3);
            if (host)
                htable(sb, L, T_VALS);
            else
                btable(L, T_VALS);
            lua_pushvalue(L, idx);
            lua_rawseti(L, -2, id);
            lua_pop(L, 1);
        } else {
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        return;
    }
    if (t != LUA_TTABLE)
        return;
    lua_pushvalue(L, idx);
    if (lua_rawget(L, vis) != LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, vis);
    luaL_checkstack(L, 6, "table nested too deeply");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        reg(sb, L, host, -2, vis, depth + 1);
        reg(sb, L, host, -1, vis, depth + 1);
        lua_pop(L, 1);
    }
}

/* Registers n values from `first` of L. */
static void reg_range(struct sandbox *sb, lua_State *L, int host, int first, int n)
{
    luaL_checkstack(L, SB_STACK, "too many values");
    lua_newtable(L);
    int vis = lua_gettop(L);
    for (int i = 0; i < n; i++)
        reg(sb, L, host, first + i, vis, 0);
    lua_pop(L, 1);
}

/* Pushes on `to` a proxy for the value of id `id` of the other state. */
static void push_proxy(struct sandbox *sb, lua_State *to, int to_host, lua_Integer id, int isfn)
{
    if (to_host)
        htable(sb, to, T_PROXIES);
    else
        btable(to, T_PROXIES);
    if (lua_rawgeti(to, -1, id) != LUA_TNIL) {
        lua_remove(to, -2);
        return;
    }
    lua_pop(to, 1);
    if (to_host) {
        lua_rawgeti(to, LUA_REGISTRYINDEX, sb->selfref);
        lua_pushinteger(to, id);
        lua_pushcclosure(to, h_call, 2);
    } else if (isfn) {
        lua_pushlightuserdata(to, sb);
        lua_pushinteger(to, id);
        lua_pushcclosure(to, b_call, 2);
    } else {
        lua_Integer *u = lua_newuserdatauv(to, sizeof *u, 0);
        *u = id;
        btable(to, T_META);
        lua_setmetatable(to, -2);
    }
    lua_pushvalue(to, -1);
    lua_rawseti(to, -3, id);
    lua_remove(to, -2);
}

/* Copies the value at idx of `from` onto `to` (runs in `to`'s context: it allocates there,
 * and only reads `from`, whose stack space was made sure of before). Values that cross by
 * reference and were not registered (an error value) become nil. vis: absolute index on `to`
 * of a table {lightuserdata(source table) -> copy}. */
static void copy(struct sandbox *sb, lua_State *from, int from_host, int idx, lua_State *to,
                 int vis, int depth)
{
    idx = lua_absindex(from, idx);
    if (depth > SB_MAXDEPTH)
        luaL_error(to, "a table passed between the bundle and the library is nested too deeply");
    luaL_checkstack(to, 6, "table nested too deeply");
    switch (lua_type(from, idx)) {
    case LUA_TNIL:
    case LUA_TNONE:
        lua_pushnil(to);
        return;
    case LUA_TBOOLEAN:
        lua_pushboolean(to, lua_toboolean(from, idx));
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(from, idx))
            lua_pushinteger(to, lua_tointeger(from, idx));
        else
            lua_pushnumber(to, lua_tonumber(from, idx));
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(from, idx, &n);
        lua_pushlstring(to, s, n);
        return;
    }
    default:
        break;
    }
    /* the original of a proxy goes back as itself */
    lua_Integer back = from_host ? h_unwrap(sb, from, idx) : b_unwrap(from, idx);
    if (back != 0) {
        if (from_host)
            btable(to, T_VALS);
        else
            htable(sb, to, T_VALS);
        lua_rawgeti(to, -1, back);
        lua_remove(to, -2);
        return;
    }
    int t = lua_type(from, idx);
    if (from_host ? h_byref(from, idx) : t == LUA_TFUNCTION) {
        if (from_host)
            htable(sb, from, T_IDS);
        else
            btable(from, T_IDS);
        lua_pushvalue(from, idx);
        lua_rawget(from, -2);
        lua_Integer id = lua_tointeger(from, -1);
        lua_pop(from, 2);
        if (id == 0)
            lua_pushnil(to);
        else
            push_proxy(sb, to, !from_host, id, t == LUA_TFUNCTION);
        return;
    }
    if (t != LUA_TTABLE) { /* a coroutine or a userdata of the bundle: nothing to pass */
        lua_pushnil(to);
        return;
    }
    lua_pushlightuserdata(to, (void *)lua_topointer(from, idx));
    if (lua_rawget(to, vis) != LUA_TNIL)
        return; /* shared or cyclic: the same copy */
    lua_pop(to, 1);
    lua_newtable(to);
    lua_pushlightuserdata(to, (void *)lua_topointer(from, idx));
    lua_pushvalue(to, -2);
    lua_rawset(to, vis);
    lua_pushnil(from);
    while (lua_next(from, idx)) {
        copy(sb, from, from_host, -2, to, vis, depth + 1);
        if (lua_isnil(to, -1)) {
            lua_pop(to, 1);
        } else {
            copy(sb, from, from_host, -1, to, vis, depth + 1);
            lua_rawset(to, -3);
        }
        lua_pop(from, 1);
    }
}

/* Copies xn values of sb->xsrc from xfirst onto `to`. */
static void copy_in(struct sandbox *sb, lua_State *to, int to_host)
{
    luaL_checkstack(to, sb->xn + SB_STACK, "too many values");
    lua_newtable(to);
    int vis = lua_gettop(to);
    for (int i = 0; i < sb->xn; i++) {
        copy(sb, sb->xsrc, !to_host, sb->xfirst + i, to, vis, 0);
        lua_insert(to, vis); /* keep the table on top */
        vis++;
    }
    lua_pop(to, 1);
}

/* ---- the two threads -------------------------------------------------------------------- */

/* Makes the call waiting in req_L on this side (mu held; released while it runs). */
static void serve(struct sandbox *sb, int done)
{
    lua_State *L = sb->req_L;
    int n = sb->req_n;
    sb->turn = W_NONE;
    pthread_mutex_unlock(&sb->mu);
    int st = lua_pcall(L, n, LUA_MULTRET, 0);
    pthread_mutex_lock(&sb->mu);
    sb->req_status = st;
    sb->turn = done;
    pthread_cond_broadcast(&sb->cv);
}

/* The bundle's thread: serves the library's calls until told to quit. */
static void *bundle_thread(void *arg)
{
    struct sandbox *sb = arg;
    pthread_mutex_lock(&sb->mu);
    for (;;) {
        while (sb->turn != W_B_RUN && sb->turn != W_QUIT)
            pthread_cond_wait(&sb->cv, &sb->mu);
        if (sb->turn == W_QUIT)
            break;
        serve(sb, W_B_DONE);
    }
    pthread_mutex_unlock(&sb->mu);
    return NULL;
}

/* True when the bundle's thread has run past a limit by more than the 1 s grace: it is stuck
 * in one C call (its hook would have stopped it otherwise). */
static int stuck(struct sandbox *sb)
{
    long long now = mono_ms();
    if (sb->max_cpu > 0 && cpu_used(sb) > sb->max_cpu + 1)
        return 1;
    if (sb->deadline_ms > 0 && now > sb->deadline_ms + 1000)
        return 1;
    return atomic_load(&sb->vcode) && now > sb->vset_ms + 1000;
}

static void abandon(struct sandbox *sb)
{
    char msg[200];
    snprintf(msg, sizeof msg, "the bundle is stuck in one call for more than %g s (--max-cpu); "
             "abandoned", sb->max_cpu + 1);
    if (atomic_load(&sb->vcode) && sb->vref == LUA_NOREF) {
        size_t n = strlen(sb->vmsg); /* the limit it hit, and what became of it */
        snprintf(sb->vmsg + n, sizeof sb->vmsg - n, "; stuck in one call: abandoned");
    }
    violate(sb, SFI_E_LIMIT, msg);
    atomic_store(&sb->abandoned, 1);
    struct sched_param prio = {0};
    pthread_setschedparam(sb->thread, SCHED_IDLE, &prio); /* best effort */
}

/* Library thread: runs lua_pcall(B, n) on the bundle's thread and serves the bundle's calls
 * into the library meanwhile. Returns the call's status, or SB_ABANDONED. */
static int run_on_bundle(struct sandbox *sb, lua_State *B, int n)
{
    pthread_mutex_lock(&sb->mu);
    sb->req_L = B;
    sb->req_n = n;
    sb->turn = W_B_RUN;
    pthread_cond_broadcast(&sb->cv);
    for (;;) {
        if (sb->turn == W_B_DONE) {
            sb->turn = W_NONE;
            int st = sb->req_status;
            pthread_mutex_unlock(&sb->mu);
            return st;
        }
        if (sb->turn == W_H_RUN) {
            serve(sb, W_H_DONE);
            if (atomic_load(&sb->abandoned)) { /* a nested call gave up on the bundle */
                pthread_mutex_unlock(&sb->mu);
                return SB_ABANDONED;
            }
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 50 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&sb->cv, &sb->mu, &until);
        if (rc == ETIMEDOUT && (sb->turn == W_NONE || sb->turn == W_B_RUN)) {
            check_limits(sb); /* the hook raises what is found here (Ctrl-C, a deadline) */
            if (stuck(sb)) {
                abandon(sb);
                pthread_mutex_unlock(&sb->mu);
                return SB_ABANDONED;
            }
        }
    }
}

/* Bundle thread: runs lua_pcall(H, n) on the library's thread and serves the library's calls
 * into the bundle meanwhile. */
static int run_on_library(struct sandbox *sb, lua_State *H, int n)
{
    pthread_mutex_lock(&sb->mu);
    sb->req_L = H;
    sb->req_n = n;
    sb->turn = W_H_RUN;
    pthread_cond_broadcast(&sb->cv);
    for (;;) {
        while (sb->turn != W_H_DONE && sb->turn != W_B_RUN)
            pthread_cond_wait(&sb->cv, &sb->mu);
        if (sb->turn == W_B_RUN) {
            serve(sb, W_B_DONE);
            continue;
        }
        sb->turn = W_NONE;
        int st = sb->req_status;
        pthread_mutex_unlock(&sb->mu);
        return st;
    }
}

/* ---- crossing ---------------------------------------------------------------------------- */

/* Runs in the bundle, protected: pushes the function of id xid (bundle side), copies the
 * arguments in, calls it. Returns true, results... or false, error (errors are registered so
 * the functions in them can cross). */
static int b_enter(lua_State *B)
{
    struct sandbox *sb = lua_touserdata(B, 1);
    lua_settop(B, 0);
    luaL_checkstack(B, sb->xn + SB_STACK, "too many values");
    btable(B, T_VALS);
    lua_rawgeti(B, -1, sb->xid);
    lua_remove(B, -2);
    copy_in(sb, B, 0);
    int st = lua_pcall(B, sb->xn, LUA_MULTRET, 0);
    if (st == LUA_ERRMEM && !sb->vcode) {
        char msg[160];
        snprintf(msg, sizeof msg, "the bundle used more than %zu MiB of memory (--max-memory)",
                 sb->max_memory >> 20);
        violate(sb, SFI_E_LIMIT, msg);
    }
    lua_pushboolean(B, st == LUA_OK);
    lua_insert(B, 1);
    int n = lua_gettop(B);
    reg_range(sb, B, 0, 2, n - 1);
    luaL_checkstack(B, SB_STACK, "too many values");
    return n;
}

/* Runs in the host, protected: the host side of b_enter. */
static int h_enter(lua_State *H)
{
    struct sandbox *sb = lua_touserdata(H, 1);
    lua_settop(H, 0);
    luaL_checkstack(H, sb->xn + SB_STACK, "too many values");
    if (sb->xid == 0) {
        htable(sb, H, T_META);
    } else {
        htable(sb, H, T_VALS);
        lua_rawgeti(H, -1, sb->xid);
        lua_remove(H, -2);
    }
    copy_in(sb, H, 1);
    int st = lua_pcall(H, sb->xn, LUA_MULTRET, 0);
    lua_pushboolean(H, st == LUA_OK);
    lua_insert(H, 1);
    int n = lua_gettop(H);
    reg_range(sb, H, 1, 2, n - 1);
    luaL_checkstack(H, SB_STACK, "too many values");
    return n;
}

/* The bundle (thread L) calls host value `id` (0: the policy function) with the n values on
 * top of L's stack. */
static int call_host(struct sandbox *sb, lua_State *L, lua_Integer id, int n)
{
    if (atomic_load(&sb->vcode) || sb->closing)
        return raise_in_bundle(sb, L);
    if (sb->nest >= SB_MAXNEST) {
        violate(sb, SFI_E_LIMIT, "calls between the bundle and the library nest too deeply");
        return raise_in_bundle(sb, L);
    }
    check_limits(sb);
    if (atomic_load(&sb->vcode))
        return raise_in_bundle(sb, L);
    lua_State *H = sb->curH;
    if (H == NULL) /* bundle code outside a call from the library (cannot happen) */
        return raise_in_bundle(sb, L);
    int first = lua_gettop(L) - n + 1;
    reg_range(sb, L, 0, first, n);
    luaL_checkstack(L, SB_STACK, "too many values");
    int htop = lua_gettop(H);
    lua_State *prevB = sb->curB;
    sb->curB = L;
    sb->nest++;
    sb->xsrc = L;
    sb->xfirst = first;
    sb->xn = n;
    sb->xid = id;
    lua_pushcfunction(H, h_enter);
    lua_pushlightuserdata(H, sb);
    int st = run_on_library(sb, H, 1);
    if (atomic_load(&sb->abandoned)) /* the library has moved on: never touch its state */
        return raise_in_bundle(sb, L);
    sb->nest--;
    sb->curB = prevB;
    if (!atomic_load(&sb->vcode))
        check_limits(sb);
    if (atomic_load(&sb->vcode)) {
        lua_settop(H, htop);
        return raise_in_bundle(sb, L);
    }
    if (st != LUA_OK) {
        const char *m = lua_tostring(H, -1);
        lua_pushfstring(L, "%s", m ? m : "library call failed");
        lua_settop(H, htop);
        return lua_error(L);
    }
    int ok = lua_toboolean(H, htop + 1);
    int nres = lua_gettop(H) - htop - 1;
    sb->xsrc = H;
    sb->xfirst = htop + 2;
    sb->xn = nres;
    copy_in(sb, L, 0); /* an allocation failure here leaves H's extra values to its caller */
    lua_settop(H, htop);
    if (!ok)
        return lua_error(L);
    return nres;
}

/* Host thread H calls bundle value `id` with the n values on top of H's stack. */
static int call_bundle(struct sandbox *sb, lua_State *H, lua_Integer id, int n)
{
    if (sb->B == NULL || sb->closing)
        return luaL_error(H, "the bundle's Lua state is closed");
    if (atomic_load(&sb->vcode))
        return raise_in_host(sb, H);
    if (sb->nest >= SB_MAXNEST) {
        violate(sb, SFI_E_LIMIT, "calls between the bundle and the library nest too deeply");
        return raise_in_host(sb, H);
    }
    check_limits(sb);
    if (atomic_load(&sb->vcode))
        return raise_in_host(sb, H);
    int first = lua_gettop(H) - n + 1;
    reg_range(sb, H, 1, first, n);
    luaL_checkstack(H, SB_STACK, "too many values");
    lua_State *B = sb->curB;
    int btop = lua_gettop(B);
    int htop = lua_gettop(H);
    if (!lua_checkstack(B, 4))
        return luaL_error(H, "the bundle's Lua state is out of memory");
    lua_State *prevH = sb->curH;
    sb->curH = H;
    sb->nest++;
    sb->xsrc = H;
    sb->xfirst = first;
    sb->xn = n;
    sb->xid = id;
    lua_pushcfunction(B, b_enter);
    lua_pushlightuserdata(B, sb);
    int st = run_on_bundle(sb, B, 1);
    sb->nest--;
    sb->curH = prevH;
    lua_settop(H, htop);
    if (st == SB_ABANDONED)
        return raise_in_host(sb, H); /* the bundle's state is never touched again */
    if (st == LUA_ERRMEM && !atomic_load(&sb->vcode))
        violate(sb, SFI_E_LIMIT, "the bundle ran out of memory (--max-memory)");
    if (!atomic_load(&sb->vcode))
        check_limits(sb);
    if (atomic_load(&sb->vcode)) {
        lua_settop(B, btop);
        return raise_in_host(sb, H);
    }
    if (st != LUA_OK) {
        const char *m = lua_tostring(B, -1);
        lua_pushfstring(H, "bundle: %s", m ? m : "error");
        lua_settop(B, btop);
        return lua_error(H);
    }
    int ok = lua_toboolean(B, btop + 1);
    int nres = lua_gettop(B) - btop - 1;
    sb->xsrc = B;
    sb->xfirst = btop + 2;
    sb->xn = nres;
    copy_in(sb, H, 1);
    lua_settop(B, btop);
    if (!ok)
        return lua_error(H);
    return nres;
}

/* A bundle-side proxy of a host function: f(...) */
static int b_call(lua_State *L)
{
    struct sandbox *sb = lua_touserdata(L, lua_upvalueindex(1));
    lua_Integer id = lua_tointeger(L, lua_upvalueindex(2));
    return call_host(sb, L, id, lua_gettop(L));
}

/* A metamethod of the bundle-side object proxies: policy(event, obj, ...) on the host. */
static int b_meta(lua_State *L)
{
    struct sandbox *sb = lua_touserdata(L, lua_upvalueindex(2));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    return call_host(sb, L, 0, lua_gettop(L));
}

/* A host-side proxy of a bundle function: f(...) */
static int h_call(lua_State *L)
{
    struct sandbox *sb = tosb(L, lua_upvalueindex(1));
    lua_Integer id = lua_tointeger(L, lua_upvalueindex(2));
    return call_bundle(sb, L, id, lua_gettop(L));
}

/* ---- the sandbox object ------------------------------------------------------------------ */

/* The userdata holds a pointer: an abandoned sandbox stays allocated for its stuck thread. */
static struct sandbox *checksb(lua_State *L)
{
    struct sandbox *sb = tosb(L, 1);
    if (sb->B == NULL || atomic_load(&sb->abandoned))
        luaL_error(L, "attempt to use a closed sandbox");
    return sb;
}

static const char *const EVENTS[] = {"index", "newindex", "call", "tostring", "len", "close",
                                     "concat", "eq", "lt", "le", NULL};

/* Runs in the bundle, protected: opens the safe libraries and makes its tables. */
static int b_setup(lua_State *B)
{
    struct sandbox *sb = lua_touserdata(B, 1);
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},         {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_TABLIBNAME, luaopen_table},   {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math},   {LUA_UTF8LIBNAME, luaopen_utf8},
        {NULL, NULL},
    };
    for (const luaL_Reg *l = libs; l->func; l++) {
        luaL_requiref(B, l->name, l->func, 1);
        lua_pop(B, 1);
    }
    /* no file access and no binary chunks from the base library */
    lua_pushnil(B);
    lua_setglobal(B, "dofile");
    lua_pushnil(B);
    lua_setglobal(B, "loadfile");
    lua_createtable(B, 4, 0);
    for (int i = T_VALS; i <= T_PROXIES; i++) {
        lua_newtable(B);
        lua_rawseti(B, -2, i);
    }
    lua_createtable(B, 0, 12); /* the object proxies' metatable */
    for (int i = 0; EVENTS[i]; i++) {
        lua_pushstring(B, EVENTS[i]);
        lua_pushlightuserdata(B, sb);
        lua_pushcclosure(B, b_meta, 2);
        lua_pushfstring(B, "__%s", EVENTS[i]);
        lua_insert(B, -2);
        lua_rawset(B, -3);
    }
    lua_pushliteral(B, "sfi.proxy");
    lua_setfield(B, -2, "__name");
    lua_pushboolean(B, 0);
    lua_setfield(B, -2, "__metatable");
    lua_rawseti(B, -2, T_META);
    lua_rawsetp(B, LUA_REGISTRYINDEX, &BKEY);
    return 0;
}

/* core.new{max_instructions=, max_memory=, max_cpu=, policy=function(event, obj, ...)} -> sb */
static int l_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "policy");
    luaL_argcheck(L, lua_isfunction(L, -1), 1, "policy function expected");
    int policy = lua_gettop(L);
    struct sandbox **u = lua_newuserdatauv(L, sizeof(struct sandbox *), 0);
    *u = NULL;
    luaL_setmetatable(L, SB_MT);
    struct sandbox *sb = calloc(1, sizeof *sb);
    if (sb == NULL)
        return luaL_error(L, "not enough memory");
    *u = sb;
    atomic_init(&sb->vcode, 0);
    atomic_init(&sb->vset_ms, 0);
    atomic_init(&sb->abandoned, 0);
    pthread_mutex_init(&sb->mu, NULL);
    pthread_cond_init(&sb->cv, NULL);
    sb->vref = sb->href = sb->selfref = LUA_NOREF;
    sb->ctx = sfib_ctx(L);
    sb->max_instructions = sfib_optfield_int(L, 1, "max_instructions", 0);
    sb->max_memory = (size_t)sfib_optfield_int(L, 1, "max_memory", 0);
    lua_getfield(L, 1, "max_cpu");
    sb->max_cpu = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    lua_createtable(L, 4, 0);
    for (int i = T_VALS; i <= T_PROXIES; i++) {
        lua_newtable(L);
        lua_rawseti(L, -2, i);
    }
    lua_pushvalue(L, policy);
    lua_rawseti(L, -2, T_META);
    sb->href = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1);
    sb->selfref = luaL_ref(L, LUA_REGISTRYINDEX); /* released by close */
    lua_State *B = lua_newstate(sb_alloc, sb);
    if (B == NULL)
        return luaL_error(L, "cannot create the bundle's Lua state: not enough memory");
    *(struct sandbox **)lua_getextraspace(B) = sb;
    lua_pushcfunction(B, b_setup);
    lua_pushlightuserdata(B, sb);
    if (lua_pcall(B, 1, 0, 0) != LUA_OK) {
        lua_close(B);
        return luaL_error(L, "cannot set up the bundle's Lua state: not enough memory");
    }
    lua_gc(B, LUA_GCGEN, 0, 0);
    lua_sethook(B, hook, LUA_MASKCOUNT, SB_EVERY);
    sb->B = sb->curB = B;
    if (pthread_create(&sb->thread, NULL, bundle_thread, sb) != 0)
        return luaL_error(L, "cannot start the bundle's thread");
    sb->thread_on = 1;
    sb->clock_ok = pthread_getcpuclockid(sb->thread, &sb->clock) == 0;
    return 1;
}

/* Runs in the bundle, protected: compiles a text chunk and registers it. */
static int b_load(lua_State *B)
{
    struct sandbox *sb = lua_touserdata(B, 1);
    if (luaL_loadbufferx(B, sb->lsrc, sb->lsrc_n, sb->lname, "t") != LUA_OK)
        return lua_error(B);
    reg_range(sb, B, 0, 2, 1);
    btable(B, T_IDS);
    lua_pushvalue(B, 2);
    lua_rawget(B, -2);
    return 1;
}

/* sb:load(source, chunkname) -> function (a proxy of the chunk, compiled in the bundle's
 * state, text only). Raises a string for a syntax error. */
static int m_load(lua_State *L)
{
    struct sandbox *sb = checksb(L);
    size_t n;
    const char *src = luaL_checklstring(L, 2, &n);
    const char *name = luaL_checkstring(L, 3);
    lua_State *B = sb->curB;
    int btop = lua_gettop(B);
    if (!lua_checkstack(B, 4))
        return luaL_error(L, "the bundle's Lua state is out of memory");
    sb->lsrc = src;
    sb->lsrc_n = n;
    sb->lname = name;
    lua_pushcfunction(B, b_load);
    lua_pushlightuserdata(B, sb);
    int st = run_on_bundle(sb, B, 1);
    if (st == SB_ABANDONED)
        return raise_in_host(sb, L);
    if (st != LUA_OK) {
        lua_pushstring(L, lua_tostring(B, -1));
        lua_settop(B, btop);
        return lua_error(L);
    }
    lua_Integer id = lua_tointeger(B, -1);
    lua_settop(B, btop);
    push_proxy(sb, L, 1, id, 1);
    return 1;
}

/* sb:violate(err) -> err: records err (an sfi.error with code LIMIT or SANDBOX) as the run's
 * result unless one is recorded already; returns the recorded one. */
static int m_violate(lua_State *L)
{
    struct sandbox *sb = tosb(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!sb->vcode) {
        lua_getfield(L, 2, "code");
        int code = sfi_errcode(luaL_optstring(L, -1, "SANDBOX"));
        lua_getfield(L, 2, "msg");
        violate(sb, code == SFI_E_LIMIT ? SFI_E_LIMIT : SFI_E_SANDBOX,
                luaL_optstring(L, -1, "not allowed"));
        lua_pop(L, 2);
        lua_pushvalue(L, 2);
        sb->vref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    push_violation(sb, L);
    return 1;
}

/* sb:violation() -> sfi.error | nil */
static int m_violation(lua_State *L)
{
    struct sandbox *sb = tosb(L, 1);
    if (!sb->vcode)
        return 0;
    push_violation(sb, L);
    return 1;
}

/* sb:deadline(ms, message) sets a wall-clock deadline (monotonic ms, core.now_ms());
 * sb:deadline(nil) clears it. */
static int m_deadline(lua_State *L)
{
    struct sandbox *sb = tosb(L, 1);
    if (lua_isnoneornil(L, 2)) {
        sb->deadline_ms = 0;
        return 0;
    }
    sb->deadline_ms = (long long)luaL_checkinteger(L, 2);
    snprintf(sb->deadline_what, sizeof sb->deadline_what, "%s", luaL_checkstring(L, 3));
    return 0;
}

/* sb:usage() -> {instructions=, memory=, peak=, cpu=} */
static int m_usage(lua_State *L)
{
    struct sandbox *sb = tosb(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, sb->instructions);
    lua_setfield(L, -2, "instructions");
    lua_pushinteger(L, (lua_Integer)sb->used);
    lua_setfield(L, -2, "memory");
    lua_pushinteger(L, (lua_Integer)sb->peak);
    lua_setfield(L, -2, "peak");
    lua_pushnumber(L, cpu_used(sb));
    lua_setfield(L, -2, "cpu");
    return 1;
}

/* Ends the bundle's thread and closes its state (not while bundle code runs); an abandoned
 * sandbox is never touched: its thread may still be in the stuck call. */
static void shutdown_bundle(struct sandbox *sb)
{
    if (atomic_load(&sb->abandoned))
        return;
    if (sb->thread_on) {
        pthread_mutex_lock(&sb->mu);
        sb->turn = W_QUIT;
        pthread_cond_broadcast(&sb->cv);
        pthread_mutex_unlock(&sb->mu);
        pthread_join(sb->thread, NULL);
        sb->thread_on = 0;
    }
    if (sb->B != NULL) {
        sb->closing = 1; /* no bundle code runs from here on (no __gc metamethods exist) */
        lua_sethook(sb->B, hook, LUA_MASKCOUNT, 1);
        lua_close(sb->B);
        sb->B = sb->curB = NULL;
    }
}

/* sb:close(): closes the bundle's state (idempotent; refused while bundle code runs). */
static int m_close(lua_State *L)
{
    struct sandbox *sb = tosb(L, 1);
    if (sb->nest > 0 && !atomic_load(&sb->abandoned))
        return luaL_error(L, "the sandbox cannot close while bundle code runs");
    shutdown_bundle(sb);
    luaL_unref(L, LUA_REGISTRYINDEX, sb->href);
    luaL_unref(L, LUA_REGISTRYINDEX, sb->selfref);
    sb->href = sb->selfref = LUA_NOREF;
    return 0;
}

static int m_gc(lua_State *L)
{
    struct sandbox **u = luaL_checkudata(L, 1, SB_MT);
    struct sandbox *sb = *u;
    if (sb == NULL)
        return 0;
    *u = NULL;
    if (atomic_load(&sb->abandoned))
        return 0; /* left to the stuck thread (the process ends soon after) */
    shutdown_bundle(sb);
    pthread_mutex_destroy(&sb->mu);
    pthread_cond_destroy(&sb->cv);
    free(sb);
    return 0;
}

static const luaL_Reg l_funcs[] = {
    {"new", l_new},
    {NULL, NULL},
};

static const luaL_Reg m_funcs[] = {
    {"load", m_load},         {"violate", m_violate}, {"violation", m_violation},
    {"deadline", m_deadline}, {"usage", m_usage},     {"close", m_close},
    {NULL, NULL},
};

static const luaL_Reg mm_funcs[] = {
    {"__gc", m_gc},
    {NULL, NULL},
};

int luaopen_sfi_core_sandbox(lua_State *L)
{
    sfib_newtype(L, SB_MT, m_funcs, mm_funcs);
    luaL_newlib(L, l_funcs);
    return 1;
}
