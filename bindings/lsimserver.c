/* lsimserver.c: sfi.core.simserver: the simulated chip of a "sim" probe served to debuggers
 * (what `sfirun sim-server` runs): as an ST-LINK/V3 over the stlink-server TCP protocol, over
 * the GDB remote serial protocol, or both at once. With both, the GDB server runs on a second
 * thread and one client at a time holds the chip (a session lock taken when a client is
 * accepted and released when it leaves). run() makes no Lua calls while it blocks. */
#include <pthread.h>
#include <string.h>

#include "sfi/gdb_server.h"
#include "sfi/probe.h"
#include "sfi/stlink_server.h"
#include "sfib.h"

#define SERVER_MT "sfi.simserver"

struct lserver {
    struct sfi_ctx *ctx;
    struct sfi_sim *sim; /* borrowed from the probe kept in the user value */
    struct sfi_stlink_simtarget *target;
    struct sfi_stlink_server *srv;
    struct sfi_stlink_tcpserver *ts;
    struct sfi_gdb_server *gs;
    pthread_mutex_t session;
    int open;
    int gdb_rc;
};

static void server_close(struct lserver *u)
{
    if (!u->open)
        return;
    sfi_stlink_tcpserver_free(u->ts);
    sfi_stlink_server_free(u->srv);
    sfi_stlink_simtarget_free(u->target);
    sfi_gdb_server_free(u->gs);
    pthread_mutex_destroy(&u->session);
    u->ts = NULL;
    u->srv = NULL;
    u->target = NULL;
    u->gs = NULL;
    u->open = 0;
}

static struct lserver *checkserver(lua_State *L)
{
    struct lserver *u = luaL_checkudata(L, 1, SERVER_MT);
    if (!u->open)
        luaL_error(L, "attempt to use a closed simulator server");
    return u;
}

static void session_start(void *ud)
{
    struct lserver *u = ud;
    pthread_mutex_lock(&u->session);
}

static void save(struct lserver *u)
{
    if (sfi_sim_save(u->sim) != SFI_OK)
        sfi_log(u->ctx, SFI_LOG_WARN, "sim-server: state not saved: %s", sfi_errdetail(u->ctx));
}

/* After each ST-LINK client: release the debug port, persist the chip, power-on probe state. */
static void stlink_done(void *ud, unsigned long n, unsigned long cmds)
{
    struct lserver *u = ud;
    (void)n;
    (void)cmds;
    sfi_stlink_simtarget_detach(u->target);
    sfi_stlink_server_reset(u->srv);
    save(u);
    pthread_mutex_unlock(&u->session);
}

static void gdb_done(void *ud, unsigned long n, unsigned long packets)
{
    struct lserver *u = ud;
    (void)n;
    (void)packets;
    save(u);
    pthread_mutex_unlock(&u->session);
}

static unsigned portfield(lua_State *L, int idx, const char *k, int *set)
{
    *set = lua_getfield(L, idx, k) != LUA_TNIL;
    lua_pop(L, 1);
    lua_Integer v = sfib_optfield_int(L, idx, k, 0);
    if (v < 0 || v > 65535)
        luaL_error(L, "%s %d out of range", k, (int)v);
    return (unsigned)v;
}

/* simserver.serve(probe, {stlink_port=, gdb_port=, serial=, max_clients=, pid=, packet_size=})
 * -> server. probe must be a "sim" probe; a port 0 is ephemeral; a missing port is not served
 * (at least one of the two). */
static int l_serve(lua_State *L)
{
    struct sfi_probe *p = sfib_checkprobe(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct sfi_sim *sim = sfi_probe_sim(p);
    if (sim == NULL)
        return luaL_error(L, "simserver.serve needs a sim probe");
    int want_st, want_gdb;
    unsigned st_port = portfield(L, 2, "stlink_port", &want_st);
    unsigned gdb_port = portfield(L, 2, "gdb_port", &want_gdb);
    if (!want_st && !want_gdb)
        return luaL_error(L, "simserver.serve: no port to serve");
    const char *serial = sfib_optfield_str(L, 2, "serial", NULL);
    if (serial != NULL && (strlen(serial) == 0 || strlen(serial) > 32))
        return luaL_error(L, "serial must be 1 to 32 characters");
    unsigned max = (unsigned)sfib_optfield_int(L, 2, "max_clients", 0);
    struct lserver *u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, SERVER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the probe (and its RSS) alive */
    u->ctx = sfib_ctx(L);
    u->sim = sim;
    pthread_mutex_init(&u->session, NULL);
    u->open = 1;
    int rc = SFI_OK;
    if (want_st) {
        struct sfi_stlink_server_cfg scfg = {
            .pid = (uint16_t)sfib_optfield_int(L, 2, "pid", 0), .serial = serial};
        struct sfi_stlink_tcpserver_cfg tcfg = {
            .port = st_port,
            .max_clients = max,
            .client_start = session_start,
            .client_done = stlink_done,
            .client_ud = u,
        };
        rc = sfi_stlink_simtarget_new(u->ctx, sim, &u->target);
        if (rc == SFI_OK)
            rc = sfi_stlink_server_new(u->ctx, &scfg, &sfi_stlink_simtarget_ops, u->target,
                                       &u->srv);
        if (rc == SFI_OK)
            rc = sfi_stlink_tcpserver_new(u->ctx, &tcfg, u->srv, &u->ts);
        if (rc == SFI_OK)
            sfi_stlink_simtarget_detach(u->target);
    }
    if (rc == SFI_OK && want_gdb) {
        struct sfi_gdb_server_cfg gcfg = {
            .port = gdb_port,
            .packet_size = (unsigned)sfib_optfield_int(L, 2, "packet_size", 0),
            .max_clients = max,
            .client_start = session_start,
            .client_done = gdb_done,
            .client_ud = u,
        };
        rc = sfi_gdb_server_new(u->ctx, &gcfg, sim, &u->gs);
    }
    if (rc != SFI_OK) {
        server_close(u);
        return sfib_raise(L, rc, "sim-server");
    }
    sfi_sim_disconnect(sim);
    return 1;
}

/* srv:stlink_port(), srv:gdb_port() -> integer | nil: the bound TCP ports */
static int m_stlink_port(lua_State *L)
{
    struct lserver *u = checkserver(L);
    if (u->ts == NULL)
        return 0;
    lua_pushinteger(L, sfi_stlink_tcpserver_port(u->ts));
    return 1;
}

static int m_gdb_port(lua_State *L)
{
    struct lserver *u = checkserver(L);
    if (u->gs == NULL)
        return 0;
    lua_pushinteger(L, sfi_gdb_server_port(u->gs));
    return 1;
}

/* srv:serial() -> string | nil: the simulated ST-LINK's serial */
static int m_serial(lua_State *L)
{
    struct lserver *u = checkserver(L);
    if (u->srv == NULL)
        return 0;
    lua_pushstring(L, sfi_stlink_server_serial(u->srv));
    return 1;
}

static void *gdb_thread(void *arg)
{
    struct lserver *u = arg;
    u->gdb_rc = sfi_gdb_server_run(u->gs);
    if (u->ts != NULL)
        sfi_stlink_tcpserver_stop(u->ts); /* one server ending ends both */
    return NULL;
}

/* srv:run() -> requests served: serves until max_clients (on either server) or Ctrl-C;
 * raises CANCELED (Ctrl-C), IO */
static int m_run(lua_State *L)
{
    struct lserver *u = checkserver(L);
    int rc;
    if (u->ts == NULL) {
        rc = sfi_gdb_server_run(u->gs);
    } else if (u->gs == NULL) {
        rc = sfi_stlink_tcpserver_run(u->ts);
    } else {
        pthread_t th;
        if (pthread_create(&th, NULL, gdb_thread, u) != 0)
            return sfib_raisef(L, SFI_E_IO, "sim-server", "cannot start the GDB server thread");
        rc = sfi_stlink_tcpserver_run(u->ts);
        sfi_gdb_server_stop(u->gs);
        pthread_join(th, NULL);
        if (rc == SFI_OK && u->gdb_rc != SFI_OK)
            rc = u->gdb_rc;
    }
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "sim-server");
    lua_Integer n = 0;
    if (u->ts != NULL)
        n += (lua_Integer)sfi_stlink_tcpserver_commands(u->ts);
    if (u->gs != NULL)
        n += (lua_Integer)sfi_gdb_server_packets(u->gs);
    lua_pushinteger(L, n);
    return 1;
}

/* srv:close() */
static int m_close(lua_State *L)
{
    server_close(luaL_checkudata(L, 1, SERVER_MT));
    return 0;
}

static const luaL_Reg l_funcs[] = {{"serve", l_serve}, {NULL, NULL}};
static const luaL_Reg m_funcs[] = {{"stlink_port", m_stlink_port},
                                   {"gdb_port", m_gdb_port},
                                   {"serial", m_serial},
                                   {"run", m_run},
                                   {"close", m_close},
                                   {NULL, NULL}};
static const luaL_Reg mm_funcs[] = {{"__close", m_close}, {"__gc", m_close}, {NULL, NULL}};

int luaopen_sfi_core_simserver(lua_State *L)
{
    sfib_newtype(L, SERVER_MT, m_funcs, mm_funcs);
    luaL_newlib(L, l_funcs);
    return 1;
}
