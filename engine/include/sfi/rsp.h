/* rsp.h: the GDB remote serial protocol's framing, shared by the "gdb" probe driver (the client,
 * engine/probe/drv_gdb.c) and the simulator's GDB server (sim/gdb_server.c). Pure functions: no
 * I/O. A packet is "$" payload "#" two hex digits of checksum (the sum of the payload bytes as
 * sent, modulo 256); "}" escapes the next byte (XOR 0x20); "*" repeats the previous byte (count
 * byte - 29 more times); "+" and "-" acknowledge; 0x03 alone is an interrupt. */
#ifndef SFI_RSP_H
#define SFI_RSP_H

#include <stddef.h>
#include <stdint.h>

#include "sfi/bytes.h" /* sfi_hex_encode / sfi_hex_decode: the hex data of m, M, qRcmd, O */

#ifdef __cplusplus
extern "C" {
#endif

/* The largest decoded payload either side accepts; bigger packets are refused (TOO_LONG). */
#define SFI_RSP_MAX_PAYLOAD (64u * 1024u)

/* Frames payload: "$", the payload with '#', '$', '}' and '*' escaped, "#", checksum. Returns
 * the framed length, or 0 when it does not fit cap (the worst case is 2 * n + 4). */
size_t sfi_rsp_frame(const void *payload, size_t n, uint8_t *out, size_t cap);

enum sfi_rsp_event {
    SFI_RSP_NONE = 0,     /* byte consumed, nothing complete yet */
    SFI_RSP_PACKET,       /* a packet with a good checksum is in dec->buf[0..len) */
    SFI_RSP_ACK,          /* "+" outside a packet */
    SFI_RSP_NAK,          /* "-" outside a packet */
    SFI_RSP_INTERRUPT,    /* 0x03 outside a packet */
    SFI_RSP_BAD_CHECKSUM, /* a packet ended with a checksum that does not match (or no hex) */
    SFI_RSP_TOO_LONG,     /* the payload grew past the decoder's capacity: dropped */
    SFI_RSP_BAD_RLE,      /* a run-length byte with nothing to repeat or a bad count */
};

/* A streaming decoder: feed it every byte read. Bytes outside packets other than + - 0x03 are
 * ignored (noise), as GDB does. The caller owns buf (capacity cap). */
struct sfi_rsp_dec {
    uint8_t *buf;
    size_t cap, len;
    int state;       /* internal */
    uint8_t sum;     /* checksum of the raw payload so far */
    uint8_t cs;      /* received checksum */
    int err;         /* internal: pending error for this packet */
    size_t skipped;  /* noise bytes ignored since the last event (statistics) */
};

void sfi_rsp_dec_init(struct sfi_rsp_dec *d, uint8_t *buf, size_t cap);
/* Feeds one byte; returns the event it completes. After PACKET, dec->buf/len hold the payload
 * until the next byte is fed. */
enum sfi_rsp_event sfi_rsp_feed(struct sfi_rsp_dec *d, uint8_t byte);

/* Parses a hex number of at most 16 digits from s[0..n) up to the first non-hex character;
 * *used gets the digits consumed (0: none). */
uint64_t sfi_rsp_hexnum(const char *s, size_t n, size_t *used);

/* What a qSupported reply says, as far as a client of memory and monitor commands cares. */
struct sfi_rsp_features {
    int has_packet_size;  /* PacketSize= present */
    uint64_t packet_size; /* its value (hex), saturated at 2^32; 0 when unreadable */
    int noack;            /* QStartNoAckMode+ */
};
/* Parses a qSupported reply ("name=value;name+;..."); unknown features are ignored. */
void sfi_rsp_supported(const uint8_t *reply, size_t n, struct sfi_rsp_features *f);

/* "Enn": 1 and *code when payload is an error reply (also "E.text" of newer servers: code 0). */
int sfi_rsp_is_error(const uint8_t *payload, size_t n, unsigned *code);

#ifdef __cplusplus
}
#endif
#endif
