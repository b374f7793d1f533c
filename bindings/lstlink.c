/* lstlink.c: sfi.core.stlink: the simulated chip of a "sim" probe served as an ST-LINK/V3 over
 * the stlink-server TCP protocol (what `sfirun sim-server` runs). The server objects live in
 * the userdata (malloc'd by the engine, freed by one idempotent close); run() makes no Lua
 * calls while it blocks. */
#include <string.h>

#include "sfi/probe.h"
#include "sfi/stlink_server.h"
#include "sfib.h"

#define SERVER_MT "sfi.stlink_server"

struct lserver {
    struct sfi_ctx *ctx;
    struct sfi_sim *sim; /* borrowed from the probe kept in the user value */
    struct sfi_stlink_simtarget *target;
    struct sfi_stlink_server *srv;
    struct sfi_stlink_tcpserver *ts;
    int open;
};

static void server_close(struct lserver *u)
{
    if (!u->open)
        return;
    sfi_stlink_tcpserver_free(u->ts);
    sfi_stlink_server_free(u->srv);
    sfi_stlink_simtarget_free(u->target);
    u->ts = NULL;
    u->srv = NULL;
    u->target = NULL;
    u->open = 0;
}

static struct lserver *checkserver(lua_State *L)
{
    struct lserver *u = luaL_checkudata(L, 1, SERVER_MT);
    if (!u->open)
        luaL_error(L, "attempt to use a closed stlink server");
    return u;
}

/* After each client: release the debug port, persist the chip, power-on state for the probe. */
static void client_done(void *ud, unsigned long n, unsigned long cmds)
{
    struct lserver *u = ud;
    (void)n;
    (void)cmds;
    sfi_stlink_simtarget_detach(u->target);
    sfi_stlink_server_reset(u->srv);
    if (sfi_sim_save(u->sim) != SFI_OK)
        sfi_log(u->ctx, SFI_LOG_WARN, "sim-server: state not saved: %s", sfi_errdetail(u->ctx));
}

/* stlink.server(probe, {port=, serial=, max_clients=, pid=}) -> server
 * probe must be a "sim" probe; port 0 = ephemeral. */
static int l_server(lua_State *L)
{
    struct sfi_probe *p = sfib_checkprobe(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct sfi_sim *sim = sfi_probe_sim(p);
    if (sim == NULL)
        return luaL_error(L, "stlink.server needs a sim probe");
    unsigned port = (unsigned)sfib_optfield_int(L, 2, "port", SFI_STLINK_TCP_PORT);
    if (port > 65535)
        return luaL_error(L, "port %u out of range", port);
    const char *serial = sfib_optfield_str(L, 2, "serial", NULL);
    if (serial != NULL && (strlen(serial) == 0 || strlen(serial) > 32))
        return luaL_error(L, "serial must be 1 to 32 characters");
    struct sfi_stlink_server_cfg scfg = {
        .pid = (uint16_t)sfib_optfield_int(L, 2, "pid", 0), .serial = serial};
    struct lserver *u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, SERVER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the probe (and its RSS) alive */
    u->ctx = sfib_ctx(L);
    u->sim = sim;
    int rc = sfi_stlink_simtarget_new(u->ctx, sim, &u->target);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "stlink.server");
    u->open = 1;
    rc = sfi_stlink_server_new(u->ctx, &scfg, &sfi_stlink_simtarget_ops, u->target, &u->srv);
    if (rc != SFI_OK) {
        server_close(u);
        return sfib_raise(L, rc, "stlink.server");
    }
    struct sfi_stlink_tcpserver_cfg tcfg = {
        .port = port,
        .max_clients = (unsigned)sfib_optfield_int(L, 2, "max_clients", 0),
        .client_done = client_done,
        .client_ud = u,
    };
    rc = sfi_stlink_tcpserver_new(u->ctx, &tcfg, u->srv, &u->ts);
    if (rc != SFI_OK) {
        server_close(u);
        return sfib_raise(L, rc, "stlink.server");
    }
    sfi_stlink_simtarget_detach(u->target);
    return 1;
}

/* srv:port() -> integer: the bound TCP port */
static int m_port(lua_State *L)
{
    lua_pushinteger(L, sfi_stlink_tcpserver_port(checkserver(L)->ts));
    return 1;
}

/* srv:serial() -> string: the simulated probe's serial */
static int m_serial(lua_State *L)
{
    lua_pushstring(L, sfi_stlink_server_serial(checkserver(L)->srv));
    return 1;
}

/* srv:run() -> clients served, commands: serves until max_clients; raises CANCELED (Ctrl-C),
 * IO */
static int m_run(lua_State *L)
{
    struct lserver *u = checkserver(L);
    int rc = sfi_stlink_tcpserver_run(u->ts);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "stlink.serve");
    lua_pushinteger(L, (lua_Integer)sfi_stlink_tcpserver_commands(u->ts));
    return 1;
}

/* srv:close() */
static int m_close(lua_State *L)
{
    server_close(luaL_checkudata(L, 1, SERVER_MT));
    return 0;
}

static const luaL_Reg l_funcs[] = {{"server", l_server}, {NULL, NULL}};
static const luaL_Reg m_funcs[] = {
    {"port", m_port}, {"serial", m_serial}, {"run", m_run}, {"close", m_close}, {NULL, NULL}};
static const luaL_Reg mm_funcs[] = {{"__close", m_close}, {"__gc", m_close}, {NULL, NULL}};

int luaopen_sfi_core_stlink(lua_State *L)
{
    sfib_newtype(L, SERVER_MT, m_funcs, mm_funcs);
    luaL_newlib(L, l_funcs);
    lua_pushinteger(L, SFI_STLINK_TCP_PORT);
    lua_setfield(L, -2, "DEFAULT_PORT");
    return 1;
}
