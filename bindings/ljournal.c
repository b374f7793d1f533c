/* ljournal.c: the sfi.core.journal module: the append-only licence journal (sfi.journal). */
#include "sfi/journal.h"
#include "sfib.h"

#define MT "sfi.journal"

struct ljournal {
    struct sfi_journal *j; /* NULL <=> closed */
};

static struct sfi_journal *check(lua_State *L)
{
    struct ljournal *u = luaL_checkudata(L, 1, MT);
    if (!u->j)
        luaL_error(L, "attempt to use a closed journal");
    return u->j;
}

/* journal.open(path, ["read"|"write"]) -> journal (default "write") */
static int l_open(lua_State *L)
{
    static const char *const modes[] = {"read", "write", NULL};
    const char *path = luaL_checkstring(L, 1);
    int mode = luaL_checkoption(L, 2, "write", modes);
    struct ljournal *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->j = NULL;
    luaL_setmetatable(L, MT);
    int rc = sfi_journal_open(sfib_ctx(L), path, (enum sfi_journal_mode)mode, &u->j);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "journal.open");
    return 1;
}

/* j:close(), __close, __gc */
static int m_close(lua_State *L)
{
    struct ljournal *u = luaL_checkudata(L, 1, MT);
    sfi_journal_close(u->j);
    u->j = NULL;
    return 0;
}

/* j:begin{uid=, cert=, fwid=, station=, recipe=, provider=, token=, fields=, counter_before=,
 *         tag=} -> id (fields: a JSON object text; tag: hex) */
static int m_begin(lua_State *L)
{
    struct sfi_journal *j = check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct sfi_journal_req r = {
        .uid = sfib_optfield_str(L, 2, "uid", NULL),
        .fwid = sfib_optfield_str(L, 2, "fwid", NULL),
        .station = sfib_optfield_str(L, 2, "station", NULL),
        .recipe = sfib_optfield_str(L, 2, "recipe", NULL),
        .provider = sfib_optfield_str(L, 2, "provider", NULL),
        .token = sfib_optfield_str(L, 2, "token", NULL),
        .fields = sfib_optfield_str(L, 2, "fields", NULL),
        .counter_before = sfib_optfield_int(L, 2, "counter_before", -1),
        .tag = sfib_optfield_str(L, 2, "tag", NULL),
    };
    lua_getfield(L, 2, "cert");
    r.cert = (const uint8_t *)lua_tolstring(L, -1, &r.certlen); /* kept alive by the table */
    lua_pop(L, 1);
    long long id = 0;
    int rc = sfi_journal_begin(j, &r, &id);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "journal.begin");
    lua_pushinteger(L, id);
    return 1;
}

/* j:finish(id, outcome, [counter_after], [detail], [licence136]) */
static int m_finish(lua_State *L)
{
    struct sfi_journal *j = check(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    const char *outcome = luaL_checkstring(L, 3);
    lua_Integer after = luaL_optinteger(L, 4, -1);
    const char *detail = luaL_optstring(L, 5, NULL);
    size_t ll = 0;
    const char *lic = luaL_optlstring(L, 6, NULL, &ll);
    int rc = sfi_journal_finish(j, id, outcome, after, detail, (const uint8_t *)lic, ll);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "journal.finish");
    return 0;
}

/* j:resolve(id, "spent"|"not-spent", detail) */
static int m_resolve(lua_State *L)
{
    struct sfi_journal *j = check(L);
    int rc = sfi_journal_resolve(j, luaL_checkinteger(L, 2), luaL_checkstring(L, 3),
                                 luaL_checkstring(L, 4));
    return rc ? sfib_raise(L, rc, "journal.resolve") : 0;
}

static void setstr(lua_State *L, const char *k, const char *v)
{
    if (v[0]) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

/* j:rows([after]) -> { {id=, time=, ..., outcome=}, ... } in id order */
static int m_rows(lua_State *L)
{
    struct sfi_journal *j = check(L);
    long long after = luaL_optinteger(L, 2, 0);
    lua_newtable(L);
    lua_Integer n = 0;
    struct sfi_journal_row r;
    int rc;
    while ((rc = sfi_journal_next(j, after, &r)) == SFI_OK) {
        lua_createtable(L, 0, 16);
        lua_pushinteger(L, r.id);
        lua_setfield(L, -2, "id");
        setstr(L, "time", r.time);
        setstr(L, "time_end", r.time_end);
        setstr(L, "uid", r.uid);
        setstr(L, "cert_sha256", r.cert_sha256);
        setstr(L, "fwid", r.fwid);
        setstr(L, "station", r.station);
        setstr(L, "recipe", r.recipe);
        setstr(L, "provider", r.provider);
        setstr(L, "outcome", r.outcome);
        setstr(L, "detail", r.detail);
        setstr(L, "token", r.token);
        setstr(L, "fields", r.fields);
        setstr(L, "tag", r.tag);
        if (r.licence_len) {
            lua_pushlstring(L, (const char *)r.licence, r.licence_len);
            lua_setfield(L, -2, "licence");
        }
        if (r.counter_before >= 0) {
            lua_pushinteger(L, r.counter_before);
            lua_setfield(L, -2, "counter_before");
        }
        if (r.counter_after >= 0) {
            lua_pushinteger(L, r.counter_after);
            lua_setfield(L, -2, "counter_after");
        }
        lua_rawseti(L, -2, ++n);
        after = r.id;
    }
    if (rc != SFI_E_NOT_FOUND)
        return sfib_raise(L, rc, "journal.rows");
    sfi_clearerr(sfib_ctx(L));
    return 1;
}

/* j:note{kind=, station=, recipe=, uid=, detail=} */
static int m_note(lua_State *L)
{
    struct sfi_journal *j = check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct sfi_journal_event e = {
        .station = sfib_optfield_str(L, 2, "station", NULL),
        .recipe = sfib_optfield_str(L, 2, "recipe", NULL),
        .uid = sfib_optfield_str(L, 2, "uid", NULL),
        .kind = sfib_optfield_str(L, 2, "kind", NULL),
        .detail = sfib_optfield_str(L, 2, "detail", NULL),
    };
    luaL_argcheck(L, e.kind != NULL, 2, "kind is required");
    int rc = sfi_journal_note(j, &e);
    return rc ? sfib_raise(L, rc, "journal.note") : 0;
}

/* j:events() -> { {id, time, station, recipe, uid, kind, detail}... } */
static int m_events(lua_State *L)
{
    struct sfi_journal *j = check(L);
    lua_newtable(L);
    lua_Integer n = 0;
    long long after = 0;
    struct sfi_journal_event_row r;
    int rc;
    while ((rc = sfi_journal_next_event(j, after, &r)) == SFI_OK) {
        lua_createtable(L, 0, 7);
        lua_pushinteger(L, r.id);
        lua_setfield(L, -2, "id");
        setstr(L, "time", r.time);
        setstr(L, "station", r.station);
        setstr(L, "recipe", r.recipe);
        setstr(L, "uid", r.uid);
        setstr(L, "kind", r.kind);
        setstr(L, "detail", r.detail);
        lua_rawseti(L, -2, ++n);
        after = r.id;
    }
    if (rc != SFI_E_NOT_FOUND)
        return sfib_raise(L, rc, "journal.events");
    sfi_clearerr(sfib_ctx(L));
    return 1;
}

int luaopen_sfi_core_journal(lua_State *L)
{
    static const luaL_Reg l[] = {{"open", l_open}, {NULL, NULL}};
    static const luaL_Reg m[] = {{"close", m_close},     {"begin", m_begin},
                                 {"finish", m_finish},   {"resolve", m_resolve},
                                 {"rows", m_rows},       {"note", m_note},
                                 {"events", m_events},   {NULL, NULL}};
    static const luaL_Reg mm[] = {{"__close", m_close}, {"__gc", m_close}, {NULL, NULL}};
    sfib_newtype(L, MT, m, mm);
    luaL_newlib(L, l);
    return 1;
}
