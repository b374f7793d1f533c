/* ltrace.c: sfi.core.trace: ST-LINK traffic captures. trace.open(path, opts) gives a reader
 * whose next() hands out one record table per ST-LINK command or stlink-server request; the
 * decoding into operations, names and summaries is Lua's (scripts/sfi/trace.lua). */
#include <string.h>

#include "sfi/image.h"
#include "sfi/stlink.h"
#include "sfi/trace.h"
#include "sfib.h"

#define TRACE_MT "sfi.trace"

struct ltrace {
    struct sfi_trace *tr; /* NULL <=> closed */
};

static struct ltrace *checktrace(lua_State *L)
{
    struct ltrace *u = luaL_checkudata(L, 1, TRACE_MT);
    if (u->tr == NULL)
        luaL_error(L, "attempt to use a closed trace");
    return u;
}

static const char *op_names[] = {
    "other", "version", "mode", "leave", "enter", "voltage", "speed", "speeds", "idcode", "reset",
    "nrst", "read_mem", "write_mem", "rw_status", "read_dbg", "write_dbg", "read_reg",
    "write_reg", "read_regs", "read_dap", "write_dap", "ap", "trace", "core", "misc",
};

static void setint(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void setstr(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void setlstr(lua_State *L, const char *k, const void *p, size_t n)
{
    lua_pushlstring(L, p ? p : "", p ? n : 0);
    lua_setfield(L, -2, k);
}

static void push_cmd(lua_State *L, const struct sfi_trace_rec *r)
{
    char label[32];
    const struct sfi_stlink_cmd *c = r->cmd;
    setstr(L, "name", sfi_stlink_cmd_label(r->cdb, label, sizeof label));
    setstr(L, "op", c ? op_names[c->op] : "unknown");
    setlstr(L, "cdb", r->cdb, 16);
    if (c != NULL && c->width)
        setint(L, "width", c->width);
    if (c != NULL && c->args == SFI_STLINK_ARGS_MEM && !c->addr_inc)
        setint(L, "fixed_addr", 1);
    if (r->has_addr)
        setint(L, "addr", r->addr);
    if (r->len || (c && c->args == SFI_STLINK_ARGS_MEM))
        setint(L, "len", r->len);
    if (c != NULL && (c->args == SFI_STLINK_ARGS_MEM || c->args == SFI_STLINK_ARGS_DAP ||
                      c->args == SFI_STLINK_ARGS_DAP_VAL || c->args == SFI_STLINK_ARGS_COM_FREQ))
        setint(L, "ap", r->ap);
    if (r->has_value)
        setint(L, "value", r->value);
    if (r->status >= 0)
        setint(L, "status", r->status);
    const char *sn = r->status >= 0 ? sfi_stlink_status_name((unsigned)r->status) : NULL;
    if (sn != NULL)
        setstr(L, "status_name", sn);
    lua_pushboolean(L, r->replied);
    lua_setfield(L, -2, "replied");
    if (r->has_server_status)
        setint(L, "server_status", r->server_status);
    if (r->usb_status)
        setint(L, "usb_status", r->usb_status);
    setint(L, "in_len", (lua_Integer)r->in_len);
    setint(L, "in_want", (lua_Integer)r->in_want);
    setint(L, "out_len", (lua_Integer)r->out_len);
    if (c != NULL && c->op == SFI_STLINK_OP_WRITE_MEM)
        setlstr(L, "data", r->out, r->out_len);
    else if (c != NULL && (c->op == SFI_STLINK_OP_READ_MEM || c->op == SFI_STLINK_OP_SPEEDS ||
                           c->op == SFI_STLINK_OP_VERSION || c->op == SFI_STLINK_OP_READ_REGS))
        setlstr(L, "data", r->in, r->in_len);
}

static void push_rec(lua_State *L, const struct sfi_trace_rec *r)
{
    static const char *kinds[] = {"cmd", "server", "gap", "note"};
    lua_createtable(L, 0, 16);
    setstr(L, "kind", kinds[r->kind]);
    setint(L, "frame", (lua_Integer)r->frame);
    lua_pushnumber(L, r->t);
    lua_setfield(L, -2, "t");
    setint(L, "stream", r->stream);
    if (r->via != NULL)
        setstr(L, "via", r->via);
    switch (r->kind) {
    case SFI_TRACE_CMD:
        push_cmd(L, r);
        break;
    case SFI_TRACE_SERVER:
        setstr(L, "name", r->req ? r->req->name : "unknown");
        setlstr(L, "req", r->req_bytes, r->req_len);
        if (r->rep_bytes != NULL)
            setlstr(L, "rep", r->rep_bytes, r->rep_len);
        if (r->has_server_status)
            setint(L, "server_status", r->server_status);
        break;
    case SFI_TRACE_GAP:
        setint(L, "bytes", (lua_Integer)r->gap_bytes);
        lua_pushboolean(L, r->to_server);
        lua_setfield(L, -2, "to_server");
        break;
    default:
        setstr(L, "text", r->text);
        break;
    }
}

/* trace.open(path, {port=, all=}) -> reader; raises NOT_FOUND, ACCESS, FORMAT, NOMEM */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct sfi_trace_opts o;
    memset(&o, 0, sizeof o);
    if (lua_istable(L, 2)) {
        o.port = (unsigned)sfib_optfield_int(L, 2, "port", 0);
        o.all_ports = sfib_optfield_bool(L, 2, "all", 0);
    }
    struct ltrace *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->tr = NULL;
    luaL_setmetatable(L, TRACE_MT);
    int rc = sfi_trace_open(sfib_ctx(L), path, &o, &u->tr);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "trace.open");
    return 1;
}

/* trace.sha256(s) -> 64 hex digits */
static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char hex[65];
    int rc = sfi_sha256_hex(sfib_ctx(L), s, n, hex);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "trace.sha256");
    lua_pushstring(L, hex);
    return 1;
}

/* r:next() -> record table | nil at the end; raises FORMAT (damaged or cut-short file) */
static int m_next(lua_State *L)
{
    struct ltrace *u = checktrace(L);
    const struct sfi_trace_rec *r;
    int rc = sfi_trace_next(u->tr, &r);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "trace.next");
    if (r == NULL)
        lua_pushnil(L);
    else
        push_rec(L, r);
    return 1;
}

/* r:stats() -> {frames, tcp_segments, ..., linktype, link, ports={...}, usb_ids={...}} */
static int m_stats(lua_State *L)
{
    const struct sfi_trace_stats *s = sfi_trace_stats(checktrace(L)->tr);
    lua_createtable(L, 0, 16);
    setint(L, "frames", (lua_Integer)s->frames);
    setint(L, "tcp_segments", (lua_Integer)s->tcp_segments);
    setint(L, "other_ip", (lua_Integer)s->other_ip);
    setint(L, "non_ip", (lua_Integer)s->non_ip);
    setint(L, "usb_urbs", (lua_Integer)s->usb_urbs);
    setint(L, "tcp_flows", s->tcp_flows);
    setint(L, "stlink_flows", s->stlink_flows);
    setint(L, "usb_devices", s->usb_devices);
    setint(L, "stlink_devices", s->stlink_devices);
    setint(L, "records", (lua_Integer)s->records);
    setint(L, "gaps", (lua_Integer)s->gaps);
    setint(L, "dropped", (lua_Integer)s->dropped);
    setint(L, "linktype", s->linktype);
    setstr(L, "link", s->linkname);
    lua_createtable(L, (int)s->nports, 0);
    for (unsigned i = 0; i < s->nports; i++) {
        lua_pushinteger(L, s->ports[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "ports");
    lua_createtable(L, (int)s->nusb_ids, 0);
    for (unsigned i = 0; i < s->nusb_ids; i++) {
        lua_pushstring(L, s->usb_ids[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "usb_ids");
    return 1;
}

/* r:close(), __close, __gc */
static int m_close(lua_State *L)
{
    struct ltrace *u = luaL_checkudata(L, 1, TRACE_MT);
    sfi_trace_close(u->tr);
    u->tr = NULL;
    return 0;
}

static const luaL_Reg l_funcs[] = {{"open", l_open}, {"sha256", l_sha256}, {NULL, NULL}};
static const luaL_Reg m_funcs[] = {
    {"next", m_next}, {"stats", m_stats}, {"close", m_close}, {NULL, NULL}};
static const luaL_Reg mm_funcs[] = {{"__close", m_close}, {"__gc", m_close}, {NULL, NULL}};

int luaopen_sfi_core_trace(lua_State *L)
{
    sfib_newtype(L, TRACE_MT, m_funcs, mm_funcs);
    luaL_newlib(L, l_funcs);
    return 1;
}
