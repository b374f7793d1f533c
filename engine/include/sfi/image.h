/* image.h: SFI images (ST's .sfi format): parse whole files or stream one part as RSS
 * reads it from RAM, check and decrypt with AES-128-GCM, build (with splitting into parts),
 * and load firmware (raw binary, Intel HEX, S-record, ELF32) and option-byte CSV files.
 * Layout and the parts that are a model (not published by ST): docs/sfi-image.md. */
#ifndef SFI_IMAGE_H
#define SFI_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "sfi/sfi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SFI_IMAGE_MAGIC "SFIMAGIC"
#define SFI_IMAGE_HDR_SIZE 28  /* magic 8 | protocol u16 | area count u16 | tag 16 */
#define SFI_IMAGE_AAD_SIZE 12  /* header bytes authenticated by the header tag */
#define SFI_IMAGE_DESC_SIZE 14 /* type | ver | index u16 | size u32 | addr u32 | total u16 */
#define SFI_IMAGE_TAG_SIZE 16
#define SFI_IMAGE_HASH_SIZE 16 /* protocol 2 with hash: SHA-256 of the plaintext, first 16 */
#define SFI_IMAGE_PR_SIZE 32   /* protocol 2: P/R record (model) */
#define SFI_IMAGE_KEY_SIZE 16
#define SFI_IMAGE_NONCE_SIZE 12
#define SFI_IMAGE_FILL 16        /* TPC pads F areas with 0xFF to a multiple of 16 bytes */
#define SFI_IMAGE_CUT_ALIGN 64   /* model: F areas are cut at multiples of 64 bytes */
#define SFI_IMAGE_OB_MAX 32      /* option-byte CSV rows at most (H7: 9, H5: 12) */
#define SFI_IMAGE_TYPES "FCPRMKEHOS" /* area types ST's tools write (docs/sfi-image.md) */

struct sfi_image_header {
    uint16_t protocol; /* bytes 8..9 LE: 1 or 2 */
    uint16_t areas;    /* bytes 10..11 LE: total number of areas */
    uint8_t tag[SFI_IMAGE_TAG_SIZE];
    int hashed;        /* every area carries the 16-byte hash (protocol 2 with hash); not in
                        * the file: the whole-file parser learns it from the lengths, a
                        * streaming reader is told */
};

struct sfi_image_area {
    char type;        /* one of SFI_IMAGE_TYPES */
    uint8_t ver;      /* descriptor version byte: the image version (TPC --ver) */
    uint16_t index;   /* from 1 */
    uint32_t size;    /* ciphertext bytes */
    uint32_t addr;    /* destination (token address for P/R) */
    uint16_t total;   /* total areas, as in the header */
    int has_hash;
    uint8_t hash[SFI_IMAGE_HASH_SIZE];
    uint8_t tag[SFI_IMAGE_TAG_SIZE];
    size_t offset;    /* of the descriptor, in the buffer given to the parser */
    size_t length;    /* whole record: descriptor [+ hash] + tag + data */
};

struct sfi_image {
    struct sfi_image_header hdr;
    uint8_t version;             /* image version: area 1's version byte */
    int legacy;                  /* written by sfirun before ST's layout was known: header
                                  * byte 9 held the image version (0 = no sign of it) */
    size_t n;                    /* == hdr.areas */
    struct sfi_image_area *area; /* n entries; offsets into buf */
    uint8_t *buf;                /* a copy of the file */
    size_t len;
};

/* Whole file: header and every area, ending exactly at len. Copies buf. Whether the areas
 * carry a hash is learnt from the lengths (protocol 2 only). FORMAT (naming offset and area)
 * on any inconsistency; a file from an earlier sfirun with an image version in header byte 9
 * is FORMAT saying so. */
int sfi_image_parse(struct sfi_ctx *ctx, const uint8_t *buf, size_t len, struct sfi_image **out);
void sfi_image_free(struct sfi_image *img);

/* Streaming: the header at buf[0..28), then areas one by one from *off (advanced on
 * success), with or without the hash as hdr->hashed says (set it; the header does not tell).
 * Checks each area's index against 1..hdr->areas and its total against the header; the
 * caller checks the order. FORMAT on truncation, bad magic/type/protocol, size overflow. */
int sfi_image_parse_header(struct sfi_ctx *ctx, const uint8_t *buf, size_t len,
                           struct sfi_image_header *out);
int sfi_image_next_area(struct sfi_ctx *ctx, const uint8_t *buf, size_t len, size_t *off,
                        const struct sfi_image_header *hdr, struct sfi_image_area *out);

/* CRYPTO when the header tag (GCM, AAD = first 12 header bytes, IV = nonce) is wrong. */
int sfi_image_check_header_tag(struct sfi_ctx *ctx, const uint8_t *hdr_bytes,
                               const uint8_t *key, const uint8_t *nonce);
/* Decrypts one area; area_bytes points at its descriptor (area->length bytes). plain_out
 * holds area->size bytes. CRYPTO naming the area on a bad tag or hash. */
int sfi_image_decrypt_area(struct sfi_ctx *ctx, const struct sfi_image_area *area,
                           const uint8_t *area_bytes, const uint8_t *key, const uint8_t *nonce,
                           uint8_t *plain_out);
/* The per-area IV: nonce with index added to bytes 8..11 read as a LE u32. */
void sfi_image_area_iv(const uint8_t *nonce, uint16_t index, uint8_t iv[SFI_IMAGE_NONCE_SIZE]);
/* What an area type holds ("firmware", "option bytes", ...), as far as known; NULL if unknown. */
const char *sfi_image_type_name(char type);

/* ---- firmware segments and loaders ------------------------------------------------------ */
struct sfi_fw_seg {
    uint32_t addr;
    size_t len, cap;
    uint8_t *data;
    char name[96]; /* "app.hex segment 2" */
};

struct sfi_fw {
    struct sfi_fw_seg *seg;
    size_t n, cap;
};

void sfi_fw_init(struct sfi_fw *fw);
void sfi_fw_free(struct sfi_fw *fw);
/* Loaders append the file's segments to fw; name is used in messages. FORMAT naming the
 * file and line / record / segment. On error fw keeps what it had before the call.
 * sfi_fw_load_bin (and _auto for raw input) BORROWS buf: it must stay valid and unchanged
 * until sfi_fw_free (a copy is made only when a segment is merged or written to). */
int sfi_fw_load_bin(struct sfi_ctx *ctx, struct sfi_fw *fw, const char *name,
                    const uint8_t *buf, size_t len, uint32_t addr);
int sfi_fw_load_ihex(struct sfi_ctx *ctx, struct sfi_fw *fw, const char *name,
                     const uint8_t *buf, size_t len);
int sfi_fw_load_srec(struct sfi_ctx *ctx, struct sfi_fw *fw, const char *name,
                     const uint8_t *buf, size_t len);
int sfi_fw_load_elf(struct sfi_ctx *ctx, struct sfi_fw *fw, const char *name,
                    const uint8_t *buf, size_t len);
/* By content: ELF magic, ':' -> HEX, 'S' -> S-record; else raw binary (needs has_addr). */
int sfi_fw_load_auto(struct sfi_ctx *ctx, struct sfi_fw *fw, const char *name,
                     const uint8_t *buf, size_t len, int has_addr, uint32_t addr);
/* Sorts, merges adjacent segments; FORMAT naming both segments on overlap, FORMAT on an
 * empty set. */
int sfi_fw_merge(struct sfi_ctx *ctx, struct sfi_fw *fw);

/* Option-byte CSV (two columns: register name, value): rows must be exactly `names` in
 * order (the device pack's list, at most SFI_IMAGE_OB_MAX), values u32. Writes nrows*4 LE
 * bytes. Any byte outside the CSV grammar (NUL, control characters) is FORMAT naming line and
 * column; so is a wrong row name or value. */
int sfi_obcsv_parse(struct sfi_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                    const char *const *names, size_t nrows, uint8_t *out);

/* ---- builder ---------------------------------------------------------------------------- */
struct sfi_flash_range {
    uint32_t start, size;
};

/* An area whose plaintext the caller makes (H, O, S, M ... areas); placed before the F areas
 * in the order given. */
struct sfi_image_extra {
    char type;
    uint32_t addr;
    const uint8_t *data;
    size_t size;
};

struct sfi_image_build_cfg {
    uint8_t protocol; /* 1 or 2 */
    uint8_t version;  /* image version: every descriptor's version byte */
    int hash;         /* protocol 2 only */
    const struct sfi_image_extra *extra; /* areas before the firmware, or NULL */
    size_t nextra;
    uint32_t ram_size; /* 0: never split */
    uint32_t token;    /* continuation-token address (P/R destination) */
    int has_token;
    const uint8_t *key;   /* 16 bytes */
    const uint8_t *nonce; /* 12 bytes */
    const uint8_t *ob;    /* C area content or NULL */
    size_t ob_len;
    const struct sfi_flash_range *flash; /* NULL: no flash check */
    size_t nflash;
};

/* Builds an image from merged segments (sfi_fw_merge). Every segment must lie inside flash
 * (FORMAT naming it). Splits into parts when ram_size is set (INVALID without a token).
 * *out is malloc'd (free()). */
int sfi_image_build(struct sfi_ctx *ctx, const struct sfi_image_build_cfg *cfg,
                    const struct sfi_fw *fw, uint8_t **out, size_t *out_len);

/* SHA-256 of data as 64 lowercase hex digits and a NUL (sfi.core.sha256). Errors:
 * SFI_E_CRYPTO (OpenSSL, detail drained). */
int sfi_sha256_hex(struct sfi_ctx *ctx, const void *data, size_t len, char hex[65]);

/* The reference the benchmarks compare against (bench/flow_bench.lua): the best of 5 rounds of
 * one AES-128-GCM encryption and one decryption of n bytes (16 .. 64 MiB) with OpenSSL, in
 * milliseconds. Errors: SFI_E_INVALID (n out of range), SFI_E_NOMEM, SFI_E_CRYPTO. */
int sfi_image_gcm_floor_ms(struct sfi_ctx *ctx, size_t n, double *ms);

/* One firmware input of sfi_image_build_file: a file's bytes (borrowed), its name for errors
 * and the load address of a raw binary (has_addr). */
struct sfi_image_input {
    const char *name;
    const uint8_t *data;
    size_t len;
    int has_addr;
    uint32_t addr;
};

/* The whole build of `sfirun image build`: loads every input (sfi_fw_load_auto), merges them,
 * builds the image (sfi_image_build) and writes it to path atomically (never a partial file).
 * *len gets the image size and *areas its area count (both may be NULL). The key and nonce
 * stay the caller's (borrowed, never copied here: OpenSSL's cipher context holds the key and
 * cleanses it when freed); every IV derived from the nonce is wiped after use, and a failed
 * build wipes its partly encrypted buffer, on every exit. Errors: those of the loaders, sfi_fw_merge,
 * sfi_image_build and sfi_file_write_atomic (INVALID for a NULL cfg, path or inputs; FORMAT for
 * nin 0: no firmware). */
int sfi_image_build_file(struct sfi_ctx *ctx, const struct sfi_image_build_cfg *cfg,
                         const struct sfi_image_input *in, size_t nin, const char *path,
                         size_t *len, unsigned *areas);

/* Writes buf to path through a temporary file in the same directory and rename(2); never
 * leaves a partial file. exclusive: fail with IO if path exists. */
int sfi_file_write_atomic(struct sfi_ctx *ctx, const char *path, const uint8_t *buf, size_t len,
                          int exclusive);

#ifdef __cplusplus
}
#endif
#endif
