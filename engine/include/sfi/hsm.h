/* hsm.h: the licence HSM over PKCS#11 (a raw layer: dlopen + C_GetFunctionList). Selects a
 * token by RFC 7512 URI, logs in with a PIN read from an environment variable or a file, and
 * provisions, inspects and spends the token's licences. Token layout: docs/hsm.md. */
#ifndef SFI_HSM_H
#define SFI_HSM_H

#include <stddef.h>
#include <stdint.h>

#include "sfi/license.h"

#define SFI_HSM_PIN_ENV "SFI_HSM_PIN" /* default PIN variable */
#define SFI_HSM_FWID_MAX 64
#define SFI_HSM_TAG_SIZE 16 /* a licence request's tag (random) */
/* Tags are kept for the counter values below counter + SFI_HSM_TAG_WINDOW; older ones are
 * pruned, and a request whose counter reading is that stale releases nothing. */
#define SFI_HSM_TAG_WINDOW 16

/* Where the token is. Either uri (module-path, token and pin-source from it) or the fields;
 * a non-NULL field overrides the URI. PINs are never taken from the URI (pin-value refused). */
struct sfi_hsm_cfg {
    const char *uri;      /* "pkcs11:token=sfi?module-path=...&pin-source=env:VAR|file:PATH" */
    const char *module;   /* module path; default $SFI_PKCS11_MODULE, then SoftHSM2's */
    const char *token;    /* token label (required, from the URI or here) */
    const char *pin_env;  /* environment variable with the PIN (default SFI_HSM_PIN) */
    const char *pin_file; /* file whose first line is the PIN */
    const char *lock_dir; /* the token guard's directory when neither $SFIRUN_LOCK_DIR nor
                           * /run/lock can be used (created 0700); NULL: /tmp */
    unsigned lock_timeout_ms; /* how long an operation waits for the guard; 0: 60000 */
    const char *guard_dir; /* the guard's directory, before $SFIRUN_LOCK_DIR and /run/lock
                            * (created 0700): a station of its own, e.g. one per thread in a
                            * test of stations sharing a token; NULL normally */
};

/* A parsed RFC 7512 URI (only what sfirun uses; percent-decoded). */
struct sfi_hsm_uri {
    char token[33];
    char serial[17];       /* optional token selectors: "" when absent */
    char manufacturer[33];
    char model[17];
    char module[512];
    char pin_env[128];
    char pin_file[512];
    char object[129];      /* key selectors (signing keys): CKA_LABEL, "" when absent */
    unsigned char id[64];  /* CKA_ID, id_len bytes (0: absent) */
    size_t id_len;
    char type[12];         /* "private", "public", "cert", "secret-key", "data" or "" */
};

enum sfi_hsm_state { SFI_HSM_EMPTY = 0, SFI_HSM_PARTIAL, SFI_HSM_PROVISIONED };

struct sfi_hsm_info {
    enum sfi_hsm_state state;
    char token[33];                  /* label, blanks trimmed */
    char serial[17];                 /* token serial number, blanks trimmed */
    char module[512];                /* PKCS#11 module path as loaded */
    char fwid[SFI_HSM_FWID_MAX + 1]; /* "" when absent */
    uint32_t counter;                /* licences left (smallest counter object) */
    int counter_objects;             /* how many counter objects exist (1 when tidy) */
    int has_ca;
    uint8_t ca_pub[64];
};

/* What provisioning writes. key16/iv16 are wiped by the caller. */
struct sfi_hsm_prov {
    const uint8_t *key16; /* AES-128 firmware key */
    const uint8_t *iv16;  /* firmware nonce, 16-byte IV field (last 4 bytes zero) */
    const char *fwid;     /* firmware ID, 1..64 printable ASCII */
    uint32_t max;         /* licences */
    const uint8_t *ca_pub64; /* trusted chip CA, X||Y */
};

struct sfi_hsm;

/* Parses an RFC 7512 URI. Errors: SFI_E_USAGE (not pkcs11:, pin-value given, bad escape,
 * too long, an unknown attribute). */
int sfi_hsm_uri_parse(struct sfi_ctx *ctx, const char *uri, struct sfi_hsm_uri *out);
/* Loads the module, finds the token by label, opens an R/W session and logs in (the PIN is
 * wiped right after C_Login). Errors: SFI_E_USAGE (bad URI), SFI_E_NOT_FOUND (module, token,
 * PIN variable/file), SFI_E_NO_DEVICE, SFI_E_AUTH (wrong PIN), SFI_E_LOCKED (PIN locked), and
 * any other CKR_ mapping. *out owned by the caller (sfi_hsm_close). */
int sfi_hsm_open(struct sfi_ctx *ctx, const struct sfi_hsm_cfg *cfg, struct sfi_hsm **out);
/* The token's guard (sfi_lock on a file named after the module path and token label): every
 * sfi_hsm_* call takes it, so the threads and processes of a station never see the token's
 * objects half-written; a caller takes it around a whole licence request (journal rows and
 * licence) so nothing else happens on the token in between. Re-entrant for the holding
 * thread. Errors: as sfi_lock_acquire (SFI_E_BUSY after the configured timeout). */
int sfi_hsm_guard(struct sfi_hsm *h, struct sfi_lock **out);
void sfi_hsm_close(struct sfi_hsm *h);

/* State, firmware ID, counter, CA. Errors: CKR_ mappings, SFI_E_FORMAT (bad counter object). */
int sfi_hsm_info(struct sfi_hsm *h, struct sfi_hsm_info *out);
/* Licences left. Errors: SFI_E_NOT_FOUND (not provisioned), as sfi_hsm_info. */
int sfi_hsm_counter(struct sfi_hsm *h, uint32_t *out);
/* Writes key material, firmware ID, CA, counter and then the provisioned marker.
 * Errors: SFI_E_LOCKED (token not empty), SFI_E_INVALID (bad fields), CKR_ mappings. */
int sfi_hsm_provision(struct sfi_hsm *h, const struct sfi_hsm_prov *p);
/* Verifies cert against the token's CA (SFI_E_AUTH / SFI_E_FORMAT: counter unchanged), checks
 * the counter (SFI_E_COUNTER at 0: nothing made), makes the licence on the token, then spends
 * a counter value v: writes the request's tag object for v, stores the decrement, and releases
 * the licence (lic_out, *counter_after = v) only if its tag is the only one for v. Otherwise
 * another station spent v too: the licence is withheld for v and the next value is tried, up
 * to 5 values (*withheld counts them), then SFI_E_BUSY; SFI_E_COUNTER when the counter runs
 * out meanwhile. tag: SFI_HSM_TAG_SIZE bytes the caller journals first (NULL: a random one).
 * Other errors: CKR_ mappings. */
int sfi_hsm_license(struct sfi_hsm *h, const uint8_t cert[SFI_CERT_SIZE], const uint8_t *tag,
                    uint8_t lic_out[SFI_LIC_SIZE], uint32_t *counter_after, unsigned *withheld);
/* A fresh random request tag. Errors: SFI_E_CRYPTO. */
int sfi_hsm_new_tag(uint8_t tag[SFI_HSM_TAG_SIZE]);

/* A request tag on the token: the counter value it spent. */
struct sfi_hsm_tag {
    uint32_t value;
    uint8_t tag[SFI_HSM_TAG_SIZE];
};
/* Every request tag on the token (those of the last SFI_HSM_TAG_WINDOW values and newer), in
 * no order; *out malloc'd (free()), *n of them. Errors: SFI_E_NOMEM, CKR_ mappings. */
int sfi_hsm_tags(struct sfi_hsm *h, struct sfi_hsm_tag **out, size_t *n);

#endif
