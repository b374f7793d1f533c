/* lic_int.h: helpers shared by the licence code and the PKCS#11 layer (engine-internal). */
#ifndef SFI_LIC_INT_H
#define SFI_LIC_INT_H

#include <openssl/evp.h>

#include "license/ossl_err.h"
#include "sfi/license.h"

/* EVP_PKEY for a P-256 public key X||Y (checked on the curve); NULL on failure. */
EVP_PKEY *sfi_lic_pubkey(const uint8_t pub[64]);

/* EVP_PKEY key pair for a private scalar (public part computed); NULL on failure. */
EVP_PKEY *sfi_lic_privkey(const uint8_t priv[32]);
/* Raw X||Y (and the scalar if priv != NULL) of an EC P-256 EVP_PKEY; 0 on success. */
int sfi_lic_rawkey(EVP_PKEY *pk, uint8_t priv[32], uint8_t pub[64]);
/* 32-byte ECDH shared secret (X coordinate) of a local key and a peer; 0 on success. */
int sfi_lic_ecdh(EVP_PKEY *local, EVP_PKEY *peer, uint8_t z[32]);

#endif
