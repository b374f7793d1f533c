/* journal.c: the licence journal over SQLite (the only SQLite user in the engine, so its
 * error mapping lives here). WAL + synchronous=FULL: a row is on disk when begin/finish
 * return. Triggers refuse DELETE and any change to a row whose outcome is already known. */
#include <errno.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sfi/journal.h"

struct sfi_journal {
    struct sfi_ctx *ctx;
    sqlite3 *db;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS licence_journal("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, time_end TEXT,"
    " uid TEXT, cert_sha256 TEXT, fwid TEXT, station TEXT, recipe TEXT, provider TEXT,"
    " counter_before INTEGER, counter_after INTEGER,"
    " outcome TEXT NOT NULL DEFAULT 'unknown', detail TEXT);"
    "CREATE TRIGGER IF NOT EXISTS licence_journal_no_delete BEFORE DELETE ON licence_journal"
    " BEGIN SELECT RAISE(ABORT, 'the licence journal is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS licence_journal_once BEFORE UPDATE ON licence_journal"
    " WHEN OLD.outcome <> 'unknown'"
    " BEGIN SELECT RAISE(ABORT, 'a journal outcome is written once'); END;";

static int dberr(struct sfi_journal *j, int src, const char *op)
{
    int code;
    switch (src & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = SFI_E_BUSY; break;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH: code = SFI_E_ACCESS; break;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: code = SFI_E_FORMAT; break;
    case SQLITE_NOMEM: code = SFI_E_NOMEM; break;
    case SQLITE_CONSTRAINT: code = SFI_E_INVALID; break;
    default: code = SFI_E_IO; break;
    }
    return sfi_seterr(j->ctx, code, "journal %s: %s (%s)", op,
                      j->db ? sqlite3_errmsg(j->db) : "", sqlite3_errstr(src));
}

static void mkdirs(const char *path)
{
    char d[1024];
    size_t n = strlen(path);
    if (n >= sizeof d)
        return;
    memcpy(d, path, n + 1);
    for (char *p = d + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(d, 0700);
            *p = '/';
        }
    }
}

int sfi_journal_open(struct sfi_ctx *ctx, const char *path, struct sfi_journal **out)
{
    struct sfi_journal *j = calloc(1, sizeof *j);
    if (!j)
        return sfi_seterr(ctx, SFI_E_NOMEM, "journal");
    j->ctx = ctx;
    mkdirs(path);
    int src = sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_busy_timeout(j->db, 5000);
    char *msg = NULL;
    if (src == SQLITE_OK)
        src = sqlite3_exec(j->db, schema, NULL, NULL, &msg);
    sqlite3_free(msg);
    if (src != SQLITE_OK) {
        int rc = dberr(j, src, path);
        sfi_journal_close(j);
        return rc;
    }
    *out = j;
    return SFI_OK;
}

void sfi_journal_close(struct sfi_journal *j)
{
    if (!j)
        return;
    sqlite3_close(j->db);
    free(j);
}

static void now_iso(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

int sfi_journal_begin(struct sfi_journal *j, const struct sfi_journal_req *req,
                      long long *id_out)
{
    char t[40], hex[65] = "";
    now_iso(t, sizeof t);
    if (req->cert) {
        uint8_t md[32];
        unsigned int ml = 0;
        if (EVP_Digest(req->cert, req->certlen, md, &ml, EVP_sha256(), NULL) && ml == 32)
            for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(j->db,
                                 "INSERT INTO licence_journal(time, uid, cert_sha256, fwid, station,"
                                 " recipe, provider, counter_before) VALUES(?,?,?,?,?,?,?,?)",
                                 -1, &st, NULL);
    if (src != SQLITE_OK)
        return dberr(j, src, "insert");
    bind_text(st, 1, t);
    bind_text(st, 2, req->uid);
    bind_text(st, 3, hex[0] ? hex : NULL);
    bind_text(st, 4, req->fwid);
    bind_text(st, 5, req->station);
    bind_text(st, 6, req->recipe);
    bind_text(st, 7, req->provider);
    if (req->counter_before >= 0)
        sqlite3_bind_int64(st, 8, req->counter_before);
    else
        sqlite3_bind_null(st, 8);
    src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return dberr(j, src, "insert");
    *id_out = sqlite3_last_insert_rowid(j->db);
    return SFI_OK;
}

int sfi_journal_finish(struct sfi_journal *j, long long id, const char *outcome,
                       long long counter_after, const char *detail)
{
    char t[40];
    now_iso(t, sizeof t);
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(j->db,
                                 "UPDATE licence_journal SET outcome=?, time_end=?,"
                                 " counter_after=?, detail=? WHERE id=? AND outcome='unknown'",
                                 -1, &st, NULL);
    if (src != SQLITE_OK)
        return dberr(j, src, "update");
    bind_text(st, 1, outcome);
    bind_text(st, 2, t);
    if (counter_after >= 0)
        sqlite3_bind_int64(st, 3, counter_after);
    else
        sqlite3_bind_null(st, 3);
    bind_text(st, 4, detail);
    sqlite3_bind_int64(st, 5, id);
    src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return dberr(j, src, "update");
    if (sqlite3_changes(j->db) != 1)
        return sfi_seterr(j->ctx, SFI_E_NOT_FOUND, "journal: no open request %lld", id);
    return SFI_OK;
}

static void col(sqlite3_stmt *st, int i, char *buf, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    snprintf(buf, cap, "%s", s ? (const char *)s : "");
}

int sfi_journal_next(struct sfi_journal *j, long long after, struct sfi_journal_row *row)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(j->db,
                                 "SELECT id, time, time_end, uid, cert_sha256, fwid, station,"
                                 " recipe, provider, counter_before, counter_after, outcome,"
                                 " detail FROM licence_journal WHERE id > ? ORDER BY id LIMIT 1",
                                 -1, &st, NULL);
    if (src != SQLITE_OK)
        return dberr(j, src, "select");
    sqlite3_bind_int64(st, 1, after);
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (src == SQLITE_DONE)
            return sfi_seterr(j->ctx, SFI_E_NOT_FOUND, "journal: no row after %lld", after);
        return dberr(j, src, "select");
    }
    struct sfi_journal_row r;
    memset(&r, 0, sizeof r);
    r.id = sqlite3_column_int64(st, 0);
    col(st, 1, r.time, sizeof r.time);
    col(st, 2, r.time_end, sizeof r.time_end);
    col(st, 3, r.uid, sizeof r.uid);
    col(st, 4, r.cert_sha256, sizeof r.cert_sha256);
    col(st, 5, r.fwid, sizeof r.fwid);
    col(st, 6, r.station, sizeof r.station);
    col(st, 7, r.recipe, sizeof r.recipe);
    col(st, 8, r.provider, sizeof r.provider);
    r.counter_before = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 9);
    r.counter_after = sqlite3_column_type(st, 10) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 10);
    col(st, 11, r.outcome, sizeof r.outcome);
    col(st, 12, r.detail, sizeof r.detail);
    sqlite3_finalize(st);
    *row = r;
    return SFI_OK;
}
