/* lsandbox.c: sfi.core.sandbox, the separate Lua state a signed bundle's code runs in.
 * Nothing is shared between the bundle's state and the library's: every value that crosses
 * is copied (nil, booleans, numbers, strings, plain tables) or replaced by a proxy
 * (functions both ways; library objects, i.e. tables with a metatable and userdata, as opaque
 * proxies whose every access goes through the library's policy function). The bundle's state
 * has its own allocator with a cap and an instruction hook, so both count only bundle work.
 * The first violation (LIMIT or SANDBOX) is sticky: bundle code cannot catch it away.
 * The bundle runs on the caller's thread. A watchdog thread ends the process (exit 1, LIMIT)
 * when bundle code is stuck inside one C call (a pathological string.find) for longer than the
 * CPU limit plus one second: nothing can interrupt such a call. See docs/bundles.md. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
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
    double cpu, max_cpu, cpu_mark; /* thread CPU seconds in bundle code; mark < 0: outside */
    long long deadline_ms;         /* monotonic; 0 = none */
    char deadline_what[160];
    int nest, closing, ticks;
    int vcode;       /* 0, SFI_E_LIMIT or SFI_E_SANDBOX */
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
    /* the watchdog: bundle code running (not waiting on the library), and a counter of its
     * progress (hook calls, allocations) */
    pthread_t dog;
    int dog_on;
    atomic_int dog_stop, running;
    atomic_ulong progress;
};

/* ---- clocks ------------------------------------------------------------------------------ */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cpu_start(struct sandbox *sb)
{
    if (sb->cpu_mark < 0)
        sb->cpu_mark = cpu_now();
    atomic_fetch_add_explicit(&sb->progress, 1, memory_order_relaxed);
    atomic_store(&sb->running, 1);
}

static void cpu_stop(struct sandbox *sb)
{
    if (sb->cpu_mark >= 0)
        sb->cpu += cpu_now() - sb->cpu_mark;
    sb->cpu_mark = -1;
    atomic_store(&sb->running, 0);
}

/* The watchdog thread: wakes ten times a second; touches nothing but the atomics. Bundle code
 * that runs without calling the hook or allocating for the CPU limit plus 1 s is stuck in one
 * C call. */
static void *watchdog(void *arg)
{
    struct sandbox *sb = arg;
    long long grace = (long long)(sb->max_cpu * 1000) + 1000;
    unsigned long seen = 0;
    long long since = mono_ms();
    while (!atomic_load(&sb->dog_stop)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        unsigned long now = atomic_load_explicit(&sb->progress, memory_order_relaxed);
        if (!atomic_load(&sb->running) || now != seen) {
            seen = now;
            since = mono_ms();
        } else if (mono_ms() - since > grace) {
            char msg[200];
            int n = snprintf(msg, sizeof msg,
                             "sfirun: bundle: LIMIT: the bundle is stuck in one call for more than "
                             "%g s (--max-cpu); stopped\n", sb->max_cpu + 1);
            if (n > 0) {
                ssize_t w = write(2, msg, (size_t)n);
                (void)w; /* nothing more to do if stderr is gone */
            }
            _exit(1);
        }
    }
    return NULL;
}

static void dog_end(struct sandbox *sb)
{
    if (!sb->dog_on)
        return;
    atomic_store(&sb->dog_stop, 1);
    pthread_join(sb->dog, NULL);
    sb->dog_on = 0;
}

static double cpu_used(const struct sandbox *sb)
{
    return sb->cpu + (sb->cpu_mark >= 0 ? cpu_now() - sb->cpu_mark : 0);
}

/* ---- violations -------------------------------------------------------------------------- */

static void violate(struct sandbox *sb, int code, const char *msg)
{
    if (sb->vcode)
        return; /* the first one is the run's result */
    sb->vcode = code;
    snprintf(sb->vmsg, sizeof sb->vmsg, "%s", msg);
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
    atomic_fetch_add_explicit(&sb->progress, 1, memory_order_relaxed);
    if (sb->max_instructions > 0 && sb->instructions > sb->max_instructions)
        check_limits(sb);
    else if ((++sb->ticks & 63) == 0)
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
    atomic_fetch_add_explicit(&sb->progress, 1, memory_order_relaxed);
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
    int mine = lua_touserdata(H, -1) == sb;
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
    if (sb->vcode || sb->closing)
        return raise_in_bundle(sb, L);
    if (sb->nest >= SB_MAXNEST) {
        violate(sb, SFI_E_LIMIT, "calls between the bundle and the library nest too deeply");
        return raise_in_bundle(sb, L);
    }
    check_limits(sb);
    if (sb->vcode)
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
    cpu_stop(sb);
    lua_pushcfunction(H, h_enter);
    lua_pushlightuserdata(H, sb);
    int st = lua_pcall(H, 1, LUA_MULTRET, 0);
    cpu_start(sb);
    sb->nest--;
    sb->curB = prevB;
    if (!sb->vcode)
        check_limits(sb);
    if (sb->vcode) {
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
    if (sb->vcode)
        return raise_in_host(sb, H);
    if (sb->nest >= SB_MAXNEST) {
        violate(sb, SFI_E_LIMIT, "calls between the bundle and the library nest too deeply");
        return raise_in_host(sb, H);
    }
    check_limits(sb);
    if (sb->vcode)
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
    cpu_start(sb);
    lua_pushcfunction(B, b_enter);
    lua_pushlightuserdata(B, sb);
    int st = lua_pcall(B, 1, LUA_MULTRET, 0);
    cpu_stop(sb);
    sb->nest--;
    sb->curH = prevH;
    lua_settop(H, htop);
    if (st == LUA_ERRMEM && !sb->vcode)
        violate(sb, SFI_E_LIMIT, "the bundle ran out of memory (--max-memory)");
    if (!sb->vcode)
        check_limits(sb);
    if (sb->vcode) {
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
    struct sandbox *sb = luaL_checkudata(L, lua_upvalueindex(1), SB_MT);
    lua_Integer id = lua_tointeger(L, lua_upvalueindex(2));
    return call_bundle(sb, L, id, lua_gettop(L));
}

/* ---- the sandbox object ------------------------------------------------------------------ */

static struct sandbox *checksb(lua_State *L)
{
    struct sandbox *sb = luaL_checkudata(L, 1, SB_MT);
    if (sb->B == NULL)
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
    struct sandbox *sb = lua_newuserdatauv(L, sizeof *sb, 0);
    memset(sb, 0, sizeof *sb);
    atomic_init(&sb->dog_stop, 0);
    atomic_init(&sb->running, 0);
    atomic_init(&sb->progress, 0);
    sb->vref = sb->href = sb->selfref = LUA_NOREF;
    sb->cpu_mark = -1;
    luaL_setmetatable(L, SB_MT);
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
    if (sb->max_cpu > 0 && pthread_create(&sb->dog, NULL, watchdog, sb) == 0)
        sb->dog_on = 1;
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
    cpu_start(sb);
    int st = lua_pcall(B, 1, 1, 0);
    cpu_stop(sb);
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
    struct sandbox *sb = luaL_checkudata(L, 1, SB_MT);
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
    struct sandbox *sb = luaL_checkudata(L, 1, SB_MT);
    if (!sb->vcode)
        return 0;
    push_violation(sb, L);
    return 1;
}

/* sb:deadline(ms, message) sets a wall-clock deadline (monotonic ms, core.now_ms());
 * sb:deadline(nil) clears it. */
static int m_deadline(lua_State *L)
{
    struct sandbox *sb = luaL_checkudata(L, 1, SB_MT);
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
    struct sandbox *sb = luaL_checkudata(L, 1, SB_MT);
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

/* sb:close(): closes the bundle's state (idempotent; refused while bundle code runs). */
static int m_close(lua_State *L)
{
    struct sandbox *sb = luaL_checkudata(L, 1, SB_MT);
    if (sb->B == NULL)
        return 0;
    if (sb->nest > 0)
        return luaL_error(L, "the sandbox cannot close while bundle code runs");
    sb->closing = 1;
    dog_end(sb);
    lua_sethook(sb->B, hook, LUA_MASKCOUNT, 1);
    lua_close(sb->B);
    sb->B = sb->curB = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, sb->href);
    luaL_unref(L, LUA_REGISTRYINDEX, sb->selfref);
    sb->href = sb->selfref = LUA_NOREF;
    return 0;
}

static int m_gc(lua_State *L)
{
    struct sandbox *sb = luaL_checkudata(L, 1, SB_MT);
    dog_end(sb);
    if (sb->B != NULL && sb->nest == 0) {
        sb->closing = 1;
        lua_close(sb->B);
        sb->B = NULL;
    }
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
