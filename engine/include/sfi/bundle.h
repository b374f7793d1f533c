/* bundle.h: signed recipe bundles (one tar.gz or zip archive read from memory, never
 * extracted): the manifest codec, the raw archive writer, the signed bundle writer and the
 * verifying reader. Format and rules: docs/bundles.md. Outputs are owned by the caller and
 * released with the matching *_free function (free() for byte buffers). */
#ifndef SFI_BUNDLE_H
#define SFI_BUNDLE_H

#include "sfi/sfi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SFI_BUNDLE_MANIFEST "manifest"
#define SFI_BUNDLE_SIGNATURE "manifest.sig"
#define SFI_BUNDLE_PATH_MAX 255

enum sfi_archive_format { SFI_ARCHIVE_TGZ = 0, SFI_ARCHIVE_ZIP = 1, SFI_ARCHIVE_TAR = 2 };

/* Entry kinds of the raw writer: every kind a hostile archive may carry. */
enum sfi_archive_kind {
    SFI_AK_FILE = 0, SFI_AK_DIR, SFI_AK_SYMLINK, SFI_AK_HARDLINK, SFI_AK_CHARDEV, SFI_AK_FIFO
};

struct sfi_archive_entry {
    const char *path;
    enum sfi_archive_kind kind;
    const void *data;  /* FILE: contents (NULL with size > 0: that many zero bytes) */
    size_t size;
    const char *link;  /* SYMLINK / HARDLINK target */
};

/* Writes the entries as given, in order, mtime 0, mode 0644 (dirs 0755), no validation
 * (the bundle writer validates; tests use this to build hostile archives).
 * *out is malloc'd. Errors: SFI_E_INVALID, SFI_E_NOMEM, SFI_E_FORMAT (libarchive refused). */
int sfi_archive_write(struct sfi_ctx *ctx, const struct sfi_archive_entry *entries, size_t n,
                      enum sfi_archive_format fmt, unsigned char **out, size_t *outlen);

/* The parsed manifest. Paths and strings are NUL-terminated copies owned by the manifest. */
struct sfi_bundle_file {
    char *path;
    unsigned char sha256[32];
    uint64_t size;
};
struct sfi_bundle_permit {
    char *access; /* "read" | "write" */
    char *param;
};
struct sfi_bundle_manifest {
    char *name;
    char *version;
    char *min_sfirun; /* inclusive lower bound, "0.1" */
    char *max_sfirun; /* exclusive upper bound, "0.2" */
    char *entry;
    struct sfi_bundle_permit *permits;
    size_t npermits;
    struct sfi_bundle_file *files; /* sorted by path, unique */
    size_t nfiles;
};

/* Parses a manifest (grammar in docs/bundles.md). Errors: SFI_E_FORMAT naming the line,
 * SFI_E_NOMEM. *out is freed with sfi_bundle_manifest_free. */
int sfi_bundle_manifest_parse(struct sfi_ctx *ctx, const char *text, size_t len,
                              struct sfi_bundle_manifest **out);
void sfi_bundle_manifest_free(struct sfi_bundle_manifest *m);
/* 1 if path is an acceptable member name (relative, '/'-separated, [A-Za-z0-9._-] components,
 * no '.' or '..' components, at most SFI_BUNDLE_PATH_MAX bytes), else 0. */
int sfi_bundle_path_ok(const char *path);
/* Compares dotted versions numerically ("0.10" > "0.9"); -1, 0, 1. */
int sfi_bundle_vercmp(const char *a, const char *b);

/* Size limits for reading; zero fields take the defaults below. */
struct sfi_bundle_limits {
    size_t max_member;  /* uncompressed bytes of one member, default 16 MiB */
    size_t max_total;   /* uncompressed bytes of all members, default 64 MiB */
    size_t max_members; /* number of members, default 4096 */
};

/* Input of the writer. files[] are the members besides manifest and manifest.sig. */
struct sfi_bundle_input {
    const char *path;
    const void *data;
    size_t size;
};
struct sfi_bundle_spec {
    const char *name, *version, *min_sfirun, *max_sfirun, *entry;
    const char *const *permits; /* "read:image" ..., npermits of them */
    size_t npermits;
    const struct sfi_bundle_input *files;
    size_t nfiles;
    const char *key_pem; /* PEM private key (Ed25519 or EC P-256), or NULL with key_uri */
    size_t key_len;
    const char *key_uri; /* instead of key_pem: a PKCS#11 URI naming an EC P-256 private key
                          * in a token (pkcs11:token=..;object=..|id=..?module-path=..&
                          * pin-source=..); the manifest is signed on the token */
    enum sfi_archive_format format;
    char *signer_out;    /* optional, 65 bytes: the signer's fingerprint (hex SHA-256 of its
                          * DER SubjectPublicKeyInfo) */
};

/* Builds a signed, reproducible bundle (sorted names, mtime 0, mode 0644). *out malloc'd.
 * Errors: SFI_E_INVALID (bad name/path/duplicate/entry not a member), SFI_E_FORMAT (bad key),
 * SFI_E_UNSUPPORTED (key type), SFI_E_CRYPTO, SFI_E_NOMEM; with key_uri also SFI_E_USAGE
 * (URI), SFI_E_NOT_FOUND (module, token, key, PIN), SFI_E_AUTH (PIN), SFI_E_LOCKED. */
int sfi_bundle_create(struct sfi_ctx *ctx, const struct sfi_bundle_spec *spec,
                      unsigned char **out, size_t *outlen);

struct sfi_bundle;

/* Reads and verifies a bundle held in memory against the trusted public key (PEM).
 * Checks, in order: archive structure and names (FORMAT), limits (FORMAT), signature over
 * the manifest bytes with the trusted key (AUTH), manifest grammar (FORMAT), every member
 * listed and every listed member present with its size and SHA-256 (AUTH), the sfirun
 * version range (UNSUPPORTED). The detail names the member. Errors: also SFI_E_NOMEM.
 * The bundle keeps its own copy of every member. */
int sfi_bundle_open(struct sfi_ctx *ctx, const void *data, size_t len, const char *trust_pem,
                    size_t trust_len, const struct sfi_bundle_limits *limits,
                    struct sfi_bundle **out);
void sfi_bundle_free(struct sfi_bundle *b);
const struct sfi_bundle_manifest *sfi_bundle_get_manifest(const struct sfi_bundle *b);
/* Lowercase hex SHA-256 of the signer's DER SubjectPublicKeyInfo (64 chars). */
const char *sfi_bundle_signer(const struct sfi_bundle *b);
/* "tar.gz" or "zip". */
const char *sfi_bundle_format(const struct sfi_bundle *b);
/* A member's bytes (owned by b), manifest and manifest.sig included. Errors: SFI_E_NOT_FOUND. */
int sfi_bundle_member(const struct sfi_bundle *b, const char *path, const void **data,
                      size_t *size);

/* Fingerprint of a PEM public or private key: hex SHA-256 of its DER SubjectPublicKeyInfo.
 * Errors: SFI_E_FORMAT (not a key), SFI_E_NOMEM. */
int sfi_bundle_fingerprint(struct sfi_ctx *ctx, const char *pem, size_t len, char hex[65]);

#ifdef __cplusplus
}
#endif
#endif
