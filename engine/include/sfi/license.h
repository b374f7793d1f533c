/* license.h: chip certificates, deterministic simulated chip identities and the 136-byte
 * RSS licence (ECIES over P-256 with an AES key wrap; scheme in docs/license.md).
 * Pure functions over OpenSSL: no I/O, no global state. Secrets are wiped before return. */
#ifndef SFI_LICENSE_H
#define SFI_LICENSE_H

#include <stddef.h>
#include <stdint.h>

#include "sfi/sfi.h"

#define SFI_CERT_SIZE 136
#define SFI_CERT_PRODUCT_LEN 8
#define SFI_LIC_SIZE 136
#define SFI_LIC_HEADER_SIZE 88
#define SFI_LIC_TYPE 0x314C4653u /* "SFL1" little-endian: this scheme, version 1 (model) */
#define SFI_LIC_TYPE_ST 0x47494653u /* "SFIG": licences made by ST's tools (TPC, STM32HSM) */
#define SFI_LIC_KDF_LABEL "sfirun licence KEK v1"

/* A parsed chip certificate (a view: fields are copies, nothing is verified). */
struct sfi_cert {
    char product_id[SFI_CERT_PRODUCT_LEN + 1]; /* NUL-terminated ASCII */
    uint8_t pub[64];                           /* chip public key X||Y */
    uint8_t sig[64];                           /* ECDSA r||s by the CA */
};

/* A parsed licence header. */
struct sfi_license_info {
    uint32_t type, session, version, min_version;
    uint8_t rfu[8];
    uint8_t eph_pub[64];
};

/* Splits a 136-byte certificate. Errors: SFI_E_FORMAT (product ID not 8 printable ASCII). */
int sfi_cert_parse(struct sfi_ctx *ctx, const uint8_t cert[SFI_CERT_SIZE], struct sfi_cert *out);
/* Builds a certificate signed by ca_priv (32-byte P-256 scalar). product_id: 8 ASCII chars.
 * Errors: SFI_E_INVALID (bad product ID, bad key), SFI_E_CRYPTO (OpenSSL failure). */
int sfi_cert_make(struct sfi_ctx *ctx, const uint8_t ca_priv[32], const char *product_id,
                  const uint8_t chip_pub[64], uint8_t cert_out[SFI_CERT_SIZE]);
/* Verifies cert against the CA public key X||Y. Errors: SFI_E_FORMAT (product ID, chip key
 * not on the curve: detail names which), SFI_E_AUTH (signature does not verify),
 * SFI_E_INVALID (CA key not on the curve). */
int sfi_cert_verify(struct sfi_ctx *ctx, const uint8_t cert[SFI_CERT_SIZE],
                    const uint8_t ca_pub[64]);

/* Deterministic simulated chip key pair: stable per (uid, seed), different between UIDs.
 * Errors: SFI_E_INVALID (empty uid), SFI_E_CRYPTO. */
int sfi_chip_identity(struct sfi_ctx *ctx, const uint8_t *uid, size_t uidlen,
                      const uint8_t seed[32], uint8_t priv_out[32], uint8_t pub_out[64]);
/* The simulated chip's identity (model): its key pair from uid (sfi_chip_identity, the seed
 * being the SHA-256 of the fixed label "sfirun simulated chip identity v1") and its
 * certificate for product_id signed by the CA private key in ca_pem. priv_out is the
 * caller's to wipe; the CA scalar is wiped here on every exit. Errors: SFI_E_FORMAT (CA key
 * PEM), SFI_E_INVALID (product ID, empty uid), SFI_E_CRYPTO. */
int sfi_chip_identity_cert(struct sfi_ctx *ctx, const char *ca_pem, size_t pemlen,
                           const char *product_id, const uint8_t *uid, size_t uidlen,
                           uint8_t priv_out[32], uint8_t cert_out[SFI_CERT_SIZE]);
/* Public key X||Y of a 32-byte P-256 private scalar. Errors: SFI_E_INVALID. */
int sfi_ec_pub_from_priv(struct sfi_ctx *ctx, const uint8_t priv[32], uint8_t pub_out[64]);
/* Reads a P-256 key from PEM text (private: "EC PRIVATE KEY"/"PRIVATE KEY", public:
 * "PUBLIC KEY"). priv_out may be NULL for a public key. Errors: SFI_E_FORMAT. */
int sfi_ec_from_pem(struct sfi_ctx *ctx, const char *pem, size_t len, uint8_t priv_out[32],
                    uint8_t pub_out[64]);

/* Splits a licence header. Errors: SFI_E_FORMAT (unknown type). */
/* True when pub64 (X||Y, big-endian) is a point on P-256. */
int sfi_license_on_curve(const uint8_t pub64[64]);
int sfi_license_parse(struct sfi_ctx *ctx, const uint8_t lic[SFI_LIC_SIZE],
                      struct sfi_license_info *out);
/* Builds the 88-byte header (type SFI_LIC_TYPE, rfu zero) around an ephemeral key. */
void sfi_license_header(uint32_t session, uint32_t version, uint32_t min_version,
                        const uint8_t eph_pub[64], uint8_t hdr_out[SFI_LIC_HEADER_SIZE]);
/* The 16-byte KDF input bound to the header and the chip key:
 * SHA-256(SFI_LIC_KDF_LABEL || header88 || chip_pub64)[0..16]. Public data. */
void sfi_license_kdf_input(const uint8_t hdr[SFI_LIC_HEADER_SIZE], const uint8_t chip_pub[64],
                           uint8_t d_out[16]);
/* What the chip's RSS does: recovers the firmware key and IV. Errors: SFI_E_FORMAT (type),
 * SFI_E_CRYPTO (ephemeral key not on the curve, bad chip key), SFI_E_AUTH (unwrap integrity
 * check failed: forged, altered or made for another chip). Outputs written only on success. */
int sfi_license_open(struct sfi_ctx *ctx, const uint8_t chip_priv[32],
                     const uint8_t lic[SFI_LIC_SIZE], uint8_t key16_out[16], uint8_t iv16_out[16]);
/* Software licence provider (development only: the firmware key is in host memory).
 * Fresh ephemeral key per call. Errors: SFI_E_INVALID (chip key), SFI_E_CRYPTO. */
int sfi_license_make_soft(struct sfi_ctx *ctx, const uint8_t chip_pub[64],
                          const uint8_t fwkey16[16], const uint8_t fwiv16[16],
                          uint8_t lic_out[SFI_LIC_SIZE]);

#endif
