/* lpg.c: the sfi.core.pg module: a thin PostgreSQL client over libpq for the journal's
 * central copy (sfi.journal_db). Connect, run parameterised SQL, close; libpq's errors are
 * mapped here to sfirun codes (this is the only libpq user). The schema, the push and the
 * report are Lua. */
#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfib.h"

#define MT "sfi.pg"
#define MAX_PARAMS 64

struct lpg {
    PGconn *c; /* NULL <=> closed */
};

static PGconn *check(lua_State *L)
{
    struct lpg *u = luaL_checkudata(L, 1, MT);
    if (!u->c)
        luaL_error(L, "attempt to use a closed database connection");
    return u->c;
}

/* libpq's messages end in a newline (sometimes two lines): keep one line of text. */
static void oneline(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src && *src && n + 1 < cap; src++) {
        char ch = *src == '\n' || *src == '\t' ? ' ' : *src;
        if (ch == ' ' && (n == 0 || dst[n - 1] == ' '))
            continue;
        dst[n++] = ch;
    }
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

/* Raises an sfi.error {code, op, msg, detail, sqlstate}. */
static int lpg_raise(lua_State *L, int rc, const char *op, const char *msg, const char *sqlstate)
{
    char line[1024];
    oneline(line, sizeof line, msg);
    sfib_pusherror(L, rc, op, line, sqlstate ? sqlstate : "");
    if (sqlstate) {
        lua_pushstring(L, sqlstate);
        lua_setfield(L, -2, "sqlstate");
    }
    return lua_error(L);
}

static int contains(const char *s, const char *what) { return s && strstr(s, what) != NULL; }

/* "pass" in any case: a key=value password, or a URI that spells it oddly */
static int mentions_pass(const char *s)
{
    for (; *s; s++)
        if (tolower((unsigned char)s[0]) == 'p' && tolower((unsigned char)s[1]) == 'a' &&
            tolower((unsigned char)s[2]) == 's' && tolower((unsigned char)s[3]) == 's')
            return 1;
    return 0;
}

/* A failed connection: libpq gives no SQLSTATE, only its message. */
static int connect_code(const char *msg)
{
    if (contains(msg, "password") || contains(msg, "authentication") ||
        contains(msg, "no pg_hba.conf entry") || contains(msg, "role \""))
        return SFI_E_AUTH;
    if (contains(msg, "timeout expired"))
        return SFI_E_TIMEOUT;
    if (contains(msg, "Connection refused") || contains(msg, "No such file or directory") ||
        contains(msg, "could not translate host name") || contains(msg, "unreachable") ||
        contains(msg, "server closed the connection") || contains(msg, "the database system is"))
        return SFI_E_NO_DEVICE;
    if (contains(msg, "database \"") && contains(msg, "does not exist"))
        return SFI_E_NOT_FOUND;
    return SFI_E_IO;
}

/* A failed statement: by SQLSTATE class (PostgreSQL, Appendix A). */
static int state_code(const char *st)
{
    if (!st || strlen(st) != 5)
        return SFI_E_IO;
    if (!strncmp(st, "08", 2) || !strncmp(st, "57P", 3))
        return SFI_E_NO_DEVICE; /* connection exception, operator intervention */
    if (!strncmp(st, "28", 2))
        return SFI_E_AUTH;
    if (!strcmp(st, "42501"))
        return SFI_E_ACCESS;
    if (!strncmp(st, "40", 2) || !strcmp(st, "55P03"))
        return SFI_E_BUSY; /* serialization failure, deadlock, lock not available */
    if (!strncmp(st, "57014", 5))
        return SFI_E_TIMEOUT; /* statement timeout / cancel */
    if (!strncmp(st, "22", 2) || !strncmp(st, "23", 2))
        return SFI_E_FORMAT; /* data exception, integrity constraint */
    if (!strncmp(st, "53", 2) || !strncmp(st, "58", 2) || !strncmp(st, "XX", 2))
        return SFI_E_IO;
    return SFI_E_PROTOCOL;
}

static void quiet(void *arg, const char *message) { (void)arg, (void)message; }

/* pg.connect(uri, [timeout_s]) -> connection. The URI is a libpq connection string
 * ("postgresql://user@host:port/db?..." or "host=... dbname=..."); a password in it is
 * refused (USAGE): it comes from PGPASSWORD, ~/.pgpass or a service file. timeout_s (default
 * 10) is libpq's connect_timeout, and bounds TCP silence (tcp_user_timeout, keepalives),
 * unless the URI sets them. Raises USAGE (bad URI), NO_DEVICE
 * (refused, no such host or socket), TIMEOUT, AUTH, NOT_FOUND (no such database), IO. */
static int l_connect(lua_State *L)
{
    const char *uri = luaL_checkstring(L, 1);
    lua_Integer timeout = lua_isnoneornil(L, 2) ? 10 : sfib_checkrange(L, 2, 1, 3600);
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(uri, &perr);
    if (!opts) {
        /* libpq's reason may quote the text, and a broken URI may still hold a password */
        char msg[600];
        int secret = strchr(uri, '@') || mentions_pass(uri);
        snprintf(msg, sizeof msg, "not a PostgreSQL connection URI: %s",
                 secret ? "malformed (libpq's reason withheld: the text may hold a password)"
                 : perr ? perr
                        : "out of memory");
        PQfreemem(perr);
        return lpg_raise(L, SFI_E_USAGE, "pg.connect", msg, NULL);
    }
    int has_password = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && o->val[0])
            has_password = 1;
    PQconninfoFree(opts);
    if (has_password)
        return lpg_raise(L, SFI_E_USAGE, "pg.connect",
                     "the connection URI holds a password: remove it and give it in PGPASSWORD, "
                     "~/.pgpass or a service file (a password on the command line is visible "
                     "to every user of the machine)",
                     NULL);
    /* A server that vanishes mid-statement (network cut, not a crash) is noticed within
     * about the same time: unacknowledged data (tcp_user_timeout) and idle keepalives. */
    char tmo[24], tmo_ms[24], ka_int[24];
    snprintf(tmo, sizeof tmo, "%lld", (long long)timeout);
    snprintf(tmo_ms, sizeof tmo_ms, "%lld", (long long)timeout * 1000);
    snprintf(ka_int, sizeof ka_int, "%lld", (long long)(timeout > 3 ? timeout / 3 : 1));
    /* keywords before dbname are defaults the URI may override; those after it win */
    const char *const keys[] = {"connect_timeout", "tcp_user_timeout", "keepalives_idle",
                                "keepalives_interval", "keepalives_count", "application_name",
                                "dbname", NULL};
    const char *const vals[] = {tmo, tmo_ms, tmo, ka_int, "3", "sfirun", uri, NULL};
    struct lpg *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->c = NULL;
    luaL_setmetatable(L, MT);
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c)
        return lpg_raise(L, SFI_E_NOMEM, "pg.connect", "out of memory", NULL);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
        PQfinish(c);
        return lpg_raise(L, connect_code(msg), "pg.connect", msg, NULL);
    }
    PQsetNoticeProcessor(c, quiet, NULL); /* "already exists, skipping" is not news */
    u->c = c;
    return 1;
}

/* c:close(), __close, __gc */
static int m_close(lua_State *L)
{
    struct lpg *u = luaL_checkudata(L, 1, MT);
    PQfinish(u->c);
    u->c = NULL;
    return 0;
}

/* c:exec(sql, ...) -> rows, affected. Parameters $1.. are text (numbers and booleans are
 * converted, nil is NULL). rows is a list of {column = text} (NULL columns absent) for a
 * query, an empty list otherwise; affected is the number of rows changed or returned.
 * Raises by SQLSTATE: NO_DEVICE (connection lost), AUTH, ACCESS, BUSY (deadlock,
 * serialization), TIMEOUT, FORMAT (bad data, constraint), PROTOCOL (other SQL errors), IO;
 * the server's message is the error's msg and its SQLSTATE the error's sqlstate. */
static int m_exec(lua_State *L)
{
    PGconn *c = check(L);
    const char *sql = luaL_checkstring(L, 2);
    int n = lua_gettop(L) - 2;
    luaL_argcheck(L, n <= MAX_PARAMS, MAX_PARAMS + 2, "too many parameters");
    const char *vals[MAX_PARAMS];
    int lens[MAX_PARAMS];
    for (int i = 0; i < n; i++) {
        int idx = i + 3;
        switch (lua_type(L, idx)) {
        case LUA_TNIL: vals[i] = NULL; break;
        case LUA_TBOOLEAN:
            vals[i] = lua_toboolean(L, idx) ? "t" : "f";
            break;
        case LUA_TNUMBER:
        case LUA_TSTRING:
            vals[i] = lua_tostring(L, idx); /* numbers converted in place: kept on the stack */
            break;
        default:
            return luaL_argerror(L, idx, "string, number, boolean or nil expected");
        }
        lens[i] = 0;
    }
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, lens, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        char msg[1024], state[8] = "";
        const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (s)
            snprintf(state, sizeof state, "%s", s);
        const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        snprintf(msg, sizeof msg, "%s", m ? m : PQerrorMessage(c));
        PQclear(r);
        int rc = state[0] ? state_code(state) : SFI_E_IO;
        if (PQstatus(c) != CONNECTION_OK)
            rc = SFI_E_NO_DEVICE; /* the server went away mid-statement */
        return lpg_raise(L, rc, "pg.exec", msg, state[0] ? state : NULL);
    }
    int rows = PQntuples(r), cols = PQnfields(r);
    lua_createtable(L, rows, 0);
    for (int i = 0; i < rows; i++) {
        lua_createtable(L, 0, cols);
        for (int k = 0; k < cols; k++) {
            if (PQgetisnull(r, i, k))
                continue;
            lua_pushlstring(L, PQgetvalue(r, i, k), (size_t)PQgetlength(r, i, k));
            lua_setfield(L, -2, PQfname(r, k));
        }
        lua_rawseti(L, -2, i + 1);
    }
    const char *tuples = PQcmdTuples(r);
    lua_Integer affected = st == PGRES_TUPLES_OK ? rows : (tuples[0] ? strtoll(tuples, NULL, 10) : 0);
    PQclear(r);
    lua_pushinteger(L, affected);
    return 2;
}

/* c:status() -> "idle" | "transaction" | "failed" (a statement failed inside BEGIN) | "busy"
 * | "lost" (the connection is gone) */
static int m_status(lua_State *L)
{
    PGconn *c = check(L);
    const char *s = "lost";
    if (PQstatus(c) == CONNECTION_OK) {
        switch (PQtransactionStatus(c)) {
        case PQTRANS_IDLE: s = "idle"; break;
        case PQTRANS_INTRANS: s = "transaction"; break;
        case PQTRANS_INERROR: s = "failed"; break;
        case PQTRANS_ACTIVE: s = "busy"; break;
        default: s = "lost"; break;
        }
    }
    lua_pushstring(L, s);
    return 1;
}

/* c:server() -> {version = integer (150004), host = text, port = text, db = text, user = text} */
static int m_server(lua_State *L)
{
    PGconn *c = check(L);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, PQserverVersion(c));
    lua_setfield(L, -2, "version");
    const char *h = PQhost(c), *p = PQport(c), *d = PQdb(c), *us = PQuser(c);
    lua_pushstring(L, h ? h : "");
    lua_setfield(L, -2, "host");
    lua_pushstring(L, p ? p : "");
    lua_setfield(L, -2, "port");
    lua_pushstring(L, d ? d : "");
    lua_setfield(L, -2, "db");
    lua_pushstring(L, us ? us : "");
    lua_setfield(L, -2, "user");
    return 1;
}

int luaopen_sfi_core_pg(lua_State *L)
{
    static const luaL_Reg l[] = {{"connect", l_connect}, {NULL, NULL}};
    static const luaL_Reg m[] = {{"close", m_close},
                                 {"exec", m_exec},
                                 {"status", m_status},
                                 {"server", m_server},
                                 {NULL, NULL}};
    static const luaL_Reg mm[] = {{"__close", m_close}, {"__gc", m_close}, {NULL, NULL}};
    sfib_newtype(L, MT, m, mm);
    luaL_newlib(L, l);
    lua_pushinteger(L, PQlibVersion());
    lua_setfield(L, -2, "libpq_version");
    return 1;
}
