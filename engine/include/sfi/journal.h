/* journal.h: the licence journal, an append-only SQLite database (WAL, synchronous FULL).
 * A request is written before the licence provider is asked and its outcome after it, so a
 * crash in between leaves an "unknown" row. Rows are never deleted (a trigger refuses it). */
#ifndef SFI_JOURNAL_H
#define SFI_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sfi/sfi.h"

struct sfi_journal;

struct sfi_journal_req {
    const char *uid;         /* chip UID, hex (may be NULL) */
    const uint8_t *cert;     /* certificate bytes, hashed with SHA-256 (may be NULL) */
    size_t certlen;
    const char *fwid;        /* firmware ID (may be NULL) */
    const char *station;     /* station name (may be NULL) */
    const char *recipe;      /* recipe name (may be NULL) */
    const char *provider;    /* "token", "keyfile", "file", "command" */
    const char *token;       /* the licence source's identity (token serial...), may be NULL */
    const char *fields;      /* the device's custom fields as a JSON object, may be NULL */
    long long counter_before; /* -1 = unknown */
    const char *tag;          /* the request's tag on the token, hex (may be NULL) */
};

struct sfi_journal_row {
    long long id, counter_before, counter_after; /* -1 = unknown / NULL */
    char time[32], time_end[32];
    char uid[80], cert_sha256[65], fwid[80], station[80], recipe[128], provider[16];
    char token[80];
    char outcome[16]; /* "unknown", "ok", an error code name, or after reconciliation
                       * "spent" / "not-spent" */
    char detail[256];
    char fields[1024];            /* JSON object or "" */
    uint8_t licence[136];         /* the issued licence when licence_len == 136 */
    size_t licence_len;
    char tag[33];                 /* the request's tag (hex) or "" */
};

/* How to open: READ never creates or changes anything (a missing file is SFI_E_NOT_FOUND);
 * WRITE creates the file (never its directory) and brings an older schema up to date. */
enum sfi_journal_mode { SFI_JOURNAL_READ = 0, SFI_JOURNAL_WRITE = 1 };

/* Opens the journal (see enum sfi_journal_mode). Errors: SFI_E_NOT_FOUND (READ: no such file;
 * WRITE: no such directory), SFI_E_IO, SFI_E_ACCESS, SFI_E_FORMAT (not a journal database),
 * SFI_E_BUSY. */
int sfi_journal_open(struct sfi_ctx *ctx, const char *path, enum sfi_journal_mode mode,
                     struct sfi_journal **out);
void sfi_journal_close(struct sfi_journal *j);
/* Appends a request row with outcome "unknown"; *id_out = its id. Durable on return. */
int sfi_journal_begin(struct sfi_journal *j, const struct sfi_journal_req *req,
                      long long *id_out);
/* Records the outcome ("ok" or an error code name) of row id. A row's outcome is set once:
 * Errors: SFI_E_NOT_FOUND (no such unknown row). */
int sfi_journal_finish(struct sfi_journal *j, long long id, const char *outcome,
                       long long counter_after, const char *detail, const uint8_t *licence,
                       size_t licence_len);
/* Reconciliation: an "unknown" row becomes "spent" or "not-spent" with the evidence in detail.
 * Errors: SFI_E_NOT_FOUND (no such unknown row), SFI_E_INVALID (another outcome). */
int sfi_journal_resolve(struct sfi_journal *j, long long id, const char *outcome,
                        const char *detail);
/* The first row with id > after (ascending). Errors: SFI_E_NOT_FOUND at the end. */
int sfi_journal_next(struct sfi_journal *j, long long after, struct sfi_journal_row *row);

/* A station event that is not a licence request (a recovery and its evidence). */
struct sfi_journal_event {
    const char *station, *recipe, *uid; /* may be NULL */
    const char *kind;                   /* "recovery", ... */
    const char *detail;                 /* text (JSON for structured evidence), may be NULL */
};
struct sfi_journal_event_row {
    long long id;
    char time[32], station[80], recipe[128], uid[80], kind[32];
    char detail[4096];
};
/* Appends an event. Errors: SFI_E_IO, SFI_E_BUSY. */
int sfi_journal_note(struct sfi_journal *j, const struct sfi_journal_event *e);
/* The first event with id > after. Errors: SFI_E_NOT_FOUND at the end (or no events table). */
int sfi_journal_next_event(struct sfi_journal *j, long long after,
                           struct sfi_journal_event_row *row);

#endif
