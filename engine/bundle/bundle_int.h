/* bundle_int.h: internal interfaces between the bundle codec files: the OpenSSL side
 * (bsign.c, hashes, signatures, key fingerprints) and the libarchive reader (archive.c). */
#ifndef SFI_BUNDLE_INT_H
#define SFI_BUNDLE_INT_H

#include "sfi/bundle.h"
#include "sfi/bytes.h"

/* SHA-256 of data into out[32]. Errors: SFI_E_CRYPTO. */
int sfi_bsign_sha256(struct sfi_ctx *ctx, const void *data, size_t len, unsigned char out[32]);
/* Signs msg with a PEM private key (Ed25519, or EC P-256 with SHA-256). *sig and *spki
 * (the signer's DER SubjectPublicKeyInfo) are malloc'd. Errors: FORMAT, UNSUPPORTED, CRYPTO,
 * NOMEM. */
int sfi_bsign_sign(struct sfi_ctx *ctx, const char *key_pem, size_t key_len, const void *msg,
                   size_t len, unsigned char **sig, size_t *siglen, unsigned char **spki,
                   size_t *spkilen);
/* Signs msg with the EC P-256 private key a PKCS#11 URI names (token=, object= and/or id=,
 * module-path=, pin-source=), on the token, through libp11; the key never leaves it. Same
 * outputs as sfi_bsign_sign. Errors: USAGE (URI), NOT_FOUND (module, token, key, PIN source),
 * AUTH (wrong PIN), LOCKED, UNSUPPORTED (not EC P-256), CRYPTO, NOMEM, CKR_ mappings. */
int sfi_bsign_sign_p11(struct sfi_ctx *ctx, const char *uri, const void *msg, size_t len,
                       unsigned char **sig, size_t *siglen, unsigned char **spki,
                       size_t *spkilen);
/* Verifies sig over msg with the trusted PEM public key; spki is the key the bundle names.
 * Writes the trusted key's fingerprint. Errors: FORMAT (trust key unreadable), AUTH. */
int sfi_bsign_verify(struct sfi_ctx *ctx, const char *trust_pem, size_t trust_len,
                     const unsigned char *spki, size_t spkilen, const void *msg, size_t len,
                     const unsigned char *sig, size_t siglen, char fp[65]);

/* One member read from an archive. */
struct sfi_member {
    char *path;
    unsigned char *data;
    size_t size;
};
/* Reads every member of a tar(.gz) or zip held in memory, refusing hostile names and kinds
 * and stopping as soon as a limit is passed. *out (n members) is freed with
 * sfi_members_free. *format gets "tar.gz", "tar" or "zip". Errors: FORMAT, NOMEM. */
int sfi_archive_read(struct sfi_ctx *ctx, const void *data, size_t len,
                     const struct sfi_bundle_limits *lim, struct sfi_member **out, size_t *n,
                     const char **format);
void sfi_members_free(struct sfi_member *m, size_t n);

#endif
