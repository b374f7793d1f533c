/* bytes.h: the one set of byte-order and hex helpers: load and store 16/32/64-bit values
 * little-endian (the SFI image, the licence, ST-LINK and stlink-server, ELF32, the state
 * file) and big-endian (pcap headers, IP, Intel HEX), and hex digits. Header-only (static
 * inline) and public, so the engine, the format codecs, the simulator's ring, the bindings
 * and the tests all include the same definitions without linking anything. */
#ifndef SFI_BYTES_H
#define SFI_BYTES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline uint16_t sfi_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t sfi_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t sfi_get_le64(const uint8_t *p)
{
    return (uint64_t)sfi_get_le32(p) | (uint64_t)sfi_get_le32(p + 4) << 32;
}

static inline void sfi_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void sfi_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void sfi_put_le64(uint8_t *p, uint64_t v)
{
    sfi_put_le32(p, (uint32_t)v);
    sfi_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t sfi_get_be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t sfi_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void sfi_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void sfi_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The value of one hex digit (either case), -1 for any other byte. */
static inline int sfi_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Writes 2n lowercase hex digits of in[0..n) to out; no NUL (out may be a packet). */
static inline void sfi_hex_encode(const void *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
}

/* The same as a C string: out holds 2n + 1 bytes. */
static inline char *sfi_hex_str(const void *in, size_t n, char *out)
{
    sfi_hex_encode(in, n, out);
    out[2 * n] = '\0';
    return out;
}

/* Decodes exactly 2n hex digits of in into n bytes; 0, or -1 at a non-hex digit (out is then
 * partly written). */
static inline int sfi_hex_decode(const char *in, size_t n, void *out)
{
    uint8_t *o = out;
    for (size_t i = 0; i < n; i++) {
        int hi = sfi_hexval((unsigned char)in[2 * i]);
        int lo = sfi_hexval((unsigned char)in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        o[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

#ifdef __cplusplus
}
#endif
#endif
