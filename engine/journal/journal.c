/* journal.c: the licence journal over SQLite (the only SQLite user in the engine, so its
 * error mapping lives here). WAL + synchronous=FULL: a row is on disk when begin/finish
 * return. Triggers refuse DELETE and any change to a row whose outcome is already known.
 * Another process holding the database (busy, locked) is waited for up to 30 s, then BUSY:
 * a row is never dropped silently. A read-only open leaves no -wal/-shm file behind. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sfi/image.h"
#include "sfi/journal.h"

#define BUSY_MS 30000 /* how long a statement waits for another process's lock */

struct sfi_journal {
    int v1; /* read-only open of a version-1 file: no token/fields/licence columns */
    int v3; /* the file has the events table (always after a WRITE open) */
    int v4; /* the file has the request tag column (always after a WRITE open) */
    struct sfi_ctx *ctx;
    sqlite3 *db;
};

static const char pragmas[] = "PRAGMA journal_mode=WAL;"
                              "PRAGMA synchronous=FULL;";

/* Run inside one IMMEDIATE transaction with the version check and the migrations, so that two
 * processes opening a new (or older) journal at once never both migrate it. */
static const char schema[] =
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

/* Version 2 adds the licence source's identity, the device's custom fields and the licence
 * itself (not secret: it opens only on its chip), so a licence issued and then lost on the
 * way to its file can still be found. */
static const char migrate_v2[] =
    "ALTER TABLE licence_journal ADD COLUMN token TEXT;"
    "ALTER TABLE licence_journal ADD COLUMN fields TEXT;"
    "ALTER TABLE licence_journal ADD COLUMN licence BLOB;"
    "PRAGMA user_version = 2;";

/* Version 3: station events that are not licence requests (recoveries with the option bytes
 * before and after, ...), append-only like the licence rows. */
static const char migrate_v3[] =
    "CREATE TABLE IF NOT EXISTS events("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, station TEXT, recipe TEXT,"
    " uid TEXT, kind TEXT NOT NULL, detail TEXT);"
    "CREATE TRIGGER IF NOT EXISTS events_no_change BEFORE UPDATE ON events"
    " BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events"
    " BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;"
    "PRAGMA user_version = 3;";

/* Version 4: the request's tag, written on the token with the counter value it spent, so that
 * several stations' journals and the token can be matched row by row (docs/hsm.md). */
static const char migrate_v4[] = "ALTER TABLE licence_journal ADD COLUMN tag TEXT;"
                                 "PRAGMA user_version = 4;";

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

static int is_busy(int src)
{
    return (src & 0xff) == SQLITE_BUSY || (src & 0xff) == SQLITE_LOCKED;
}

/* sqlite3_step, run again while another process holds the database (the busy handler waits
 * inside one step; a snapshot or lock conflict it cannot wait for comes back here), up to
 * BUSY_MS in all. */
static int step(sqlite3_stmt *st)
{
    uint64_t end = sfi_now_ms() + BUSY_MS;
    int src;
    while (is_busy(src = sqlite3_step(st)) && sfi_now_ms() < end) {
        sqlite3_reset(st);
        usleep(10000);
    }
    return src;
}

/* sqlite3_exec with the same patience (for statements that are safe to run again). */
static int exec(sqlite3 *db, const char *sql, char **msg)
{
    uint64_t end = sfi_now_ms() + BUSY_MS;
    int src;
    for (;;) {
        src = sqlite3_exec(db, sql, NULL, NULL, msg);
        if (!is_busy(src) || sfi_now_ms() >= end)
            return src;
        sqlite3_free(*msg);
        *msg = NULL;
        usleep(10000);
    }
}

static int user_version(struct sfi_journal *j, int *v)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(j->db, "PRAGMA user_version", -1, &st, NULL);
    if (src == SQLITE_OK && (src = step(st)) == SQLITE_ROW) {
        *v = sqlite3_column_int(st, 0);
        src = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return src;
}

/* A read-only open of a journal no process has open (no -wal, no -shm beside it) reads the
 * file as immutable, so SQLite creates neither file; *uri gets "file:PATH?immutable=1".
 * With them present (a writer at work, or one that died) the normal read-only open creates
 * nothing new. 0 when the plain path is to be used. */
static int quiet(const char *path, char *uri, size_t cap)
{
    char side[4200];
    struct stat sb;
    const char *suffix[] = {"-wal", "-shm"};
    for (int i = 0; i < 2; i++) {
        int n = snprintf(side, sizeof side, "%s%s", path, suffix[i]);
        if (n < 0 || (size_t)n >= sizeof side || stat(side, &sb) == 0)
            return 0;
    }
    static const char hex[] = "0123456789ABCDEF";
    size_t o = (size_t)snprintf(uri, cap, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (o + 4 >= cap)
            return 0;
        if (*p == '%' || *p == '?' || *p == '#' || *p < 0x21 || *p > 0x7e) {
            uri[o++] = '%';
            uri[o++] = hex[*p >> 4];
            uri[o++] = hex[*p & 15];
        } else {
            uri[o++] = (char)*p;
        }
    }
    static const char tail[] = "?immutable=1";
    if (o + sizeof tail > cap)
        return 0;
    memcpy(uri + o, tail, sizeof tail);
    return 1;
}

int sfi_journal_open(struct sfi_ctx *ctx, const char *path, enum sfi_journal_mode mode,
                     struct sfi_journal **out)
{
    struct stat sb;
    if (mode == SFI_JOURNAL_READ && stat(path, &sb) != 0)
        return sfi_seterr(ctx, SFI_E_NOT_FOUND, "no journal at %s", path);
    if (mode == SFI_JOURNAL_WRITE) {
        char dir[1024];
        const char *slash = strrchr(path, '/');
        size_t n = slash ? (size_t)(slash - path) : 0;
        if (n >= sizeof dir)
            return sfi_seterr(ctx, SFI_E_INVALID, "journal path too long");
        memcpy(dir, n ? path : ".", n ? n : 1);
        dir[n ? n : 1] = '\0';
        if (slash == path)
            strcpy(dir, "/");
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return sfi_seterr(ctx, SFI_E_NOT_FOUND, "journal %s: directory %s does not exist",
                              path, dir);
    }
    struct sfi_journal *j = calloc(1, sizeof *j);
    if (!j)
        return sfi_seterr(ctx, SFI_E_NOMEM, "journal");
    j->ctx = ctx;
    int flags = mode == SFI_JOURNAL_WRITE ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                          : SQLITE_OPEN_READONLY;
    char uri[4200];
    const char *name = path;
    if (mode == SFI_JOURNAL_READ && quiet(path, uri, sizeof uri)) {
        name = uri;
        flags |= SQLITE_OPEN_URI;
    }
    int src = sqlite3_open_v2(name, &j->db, flags, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_busy_timeout(j->db, BUSY_MS);
    char *msg = NULL;
    int v = 0;
    if (src == SQLITE_OK && mode == SFI_JOURNAL_WRITE) {
        src = exec(j->db, pragmas, &msg);
        if (src == SQLITE_OK)
            src = exec(j->db, "BEGIN IMMEDIATE", &msg);
        if (src == SQLITE_OK) {
            src = sqlite3_exec(j->db, schema, NULL, NULL, &msg);
            if (src == SQLITE_OK)
                src = user_version(j, &v);
            if (src == SQLITE_OK && v < 2)
                src = sqlite3_exec(j->db, migrate_v2, NULL, NULL, &msg);
            if (src == SQLITE_OK && v < 3)
                src = sqlite3_exec(j->db, migrate_v3, NULL, NULL, &msg);
            if (src == SQLITE_OK && v < 4)
                src = sqlite3_exec(j->db, migrate_v4, NULL, NULL, &msg);
            int end = sqlite3_exec(j->db, src == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL,
                                   NULL);
            if (src == SQLITE_OK)
                src = end;
        }
    } else if (src == SQLITE_OK) {
        src = user_version(j, &v);
        if (src == SQLITE_OK) {
            j->v1 = v < 2;
            j->v3 = v >= 3;
            j->v4 = v >= 4;
        }
    }
    sqlite3_free(msg);
    if (src != SQLITE_OK) {
        int rc = dberr(j, src, path);
        sfi_journal_close(j);
        return rc;
    }
    if (mode == SFI_JOURNAL_WRITE)
        j->v3 = j->v4 = 1;
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
    if (req->cert && sfi_sha256_hex(j->ctx, req->cert, req->certlen, hex) != SFI_OK)
        hex[0] = '\0'; /* the row is written all the same: its outcome matters more */
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(j->db,
                                 "INSERT INTO licence_journal(time, uid, cert_sha256, fwid, station,"
                                 " recipe, provider, counter_before, token, fields, tag)"
                                 " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
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
    bind_text(st, 9, req->token);
    bind_text(st, 10, req->fields);
    bind_text(st, 11, req->tag);
    src = step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return dberr(j, src, "insert");
    *id_out = sqlite3_last_insert_rowid(j->db);
    return SFI_OK;
}

int sfi_journal_finish(struct sfi_journal *j, long long id, const char *outcome,
                       long long counter_after, const char *detail, const uint8_t *licence,
                       size_t licence_len)
{
    char t[40];
    now_iso(t, sizeof t);
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(j->db,
                                 "UPDATE licence_journal SET outcome=?, time_end=?,"
                                 " counter_after=?, detail=?, licence=? WHERE id=?"
                                 " AND outcome='unknown'",
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
    if (licence && licence_len)
        sqlite3_bind_blob(st, 5, licence, (int)licence_len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, id);
    src = step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return dberr(j, src, "update");
    if (sqlite3_changes(j->db) != 1)
        return sfi_seterr(j->ctx, SFI_E_NOT_FOUND, "journal: no open request %lld", id);
    return SFI_OK;
}

int sfi_journal_resolve(struct sfi_journal *j, long long id, const char *outcome,
                        const char *detail)
{
    if (strcmp(outcome, "spent") != 0 && strcmp(outcome, "not-spent") != 0)
        return sfi_seterr(j->ctx, SFI_E_INVALID, "journal: a reconciled row is spent or not-spent");
    return sfi_journal_finish(j, id, outcome, -1, detail, NULL, 0);
}

static void col(sqlite3_stmt *st, int i, char *buf, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    snprintf(buf, cap, "%s", s ? (const char *)s : "");
}

int sfi_journal_next(struct sfi_journal *j, long long after, struct sfi_journal_row *row)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, time, time_end, uid, cert_sha256, fwid, station, recipe, provider,"
             " counter_before, counter_after, outcome, detail, %s, %s"
             " FROM licence_journal WHERE id > ? ORDER BY id LIMIT 1",
             j->v1 ? "NULL, NULL, NULL" : "token, fields, licence", j->v4 ? "tag" : "NULL");
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
    if (src != SQLITE_OK)
        return dberr(j, src, "select");
    sqlite3_bind_int64(st, 1, after);
    src = step(st);
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
    col(st, 13, r.token, sizeof r.token);
    col(st, 14, r.fields, sizeof r.fields);
    if (sqlite3_column_type(st, 15) == SQLITE_BLOB && sqlite3_column_bytes(st, 15) == 136) {
        memcpy(r.licence, sqlite3_column_blob(st, 15), 136);
        r.licence_len = 136;
    }
    col(st, 16, r.tag, sizeof r.tag);
    sqlite3_finalize(st);
    *row = r;
    return SFI_OK;
}

int sfi_journal_note(struct sfi_journal *j, const struct sfi_journal_event *e)
{
    char t[40];
    now_iso(t, sizeof t);
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(j->db,
                                 "INSERT INTO events(time, station, recipe, uid, kind, detail)"
                                 " VALUES(?,?,?,?,?,?)",
                                 -1, &st, NULL);
    if (src != SQLITE_OK)
        return dberr(j, src, "insert event");
    bind_text(st, 1, t);
    bind_text(st, 2, e->station);
    bind_text(st, 3, e->recipe);
    bind_text(st, 4, e->uid);
    bind_text(st, 5, e->kind);
    bind_text(st, 6, e->detail);
    src = step(st);
    sqlite3_finalize(st);
    return src == SQLITE_DONE ? SFI_OK : dberr(j, src, "insert event");
}

int sfi_journal_next_event(struct sfi_journal *j, long long after, struct sfi_journal_event_row *row)
{
    if (!j->v3)
        return sfi_seterr(j->ctx, SFI_E_NOT_FOUND, "journal: no events");
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(j->db,
                                 "SELECT id, time, station, recipe, uid, kind, detail FROM events"
                                 " WHERE id > ? ORDER BY id LIMIT 1",
                                 -1, &st, NULL);
    if (src != SQLITE_OK)
        return dberr(j, src, "select event");
    sqlite3_bind_int64(st, 1, after);
    src = step(st);
    if (src != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (src == SQLITE_DONE)
            return sfi_seterr(j->ctx, SFI_E_NOT_FOUND, "journal: no event after %lld", after);
        return dberr(j, src, "select event");
    }
    struct sfi_journal_event_row r;
    memset(&r, 0, sizeof r);
    r.id = sqlite3_column_int64(st, 0);
    col(st, 1, r.time, sizeof r.time);
    col(st, 2, r.station, sizeof r.station);
    col(st, 3, r.recipe, sizeof r.recipe);
    col(st, 4, r.uid, sizeof r.uid);
    col(st, 5, r.kind, sizeof r.kind);
    col(st, 6, r.detail, sizeof r.detail);
    sqlite3_finalize(st);
    *row = r;
    return SFI_OK;
}
