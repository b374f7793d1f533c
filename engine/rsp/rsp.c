/* rsp.c: GDB remote serial protocol framing (sfi/rsp.h): the encoder, a streaming decoder with
 * escapes and run-length expansion, hex numbers and error replies (hex bytes: sfi/bytes.h). */
#include <string.h>

#include "sfi/bytes.h"
#include "sfi/rsp.h"

enum { S_IDLE = 0, S_DATA, S_ESC, S_RLE, S_CS1, S_CS2 };

size_t sfi_rsp_frame(const void *payload, size_t n, uint8_t *out, size_t cap)
{
    const uint8_t *p = payload;
    size_t o = 0;
    uint8_t sum = 0;
    if (cap < 4)
        return 0;
    out[o++] = '$';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '#' || c == '$' || c == '}' || c == '*') {
            if (o + 2 > cap - 3)
                return 0;
            out[o++] = '}';
            out[o++] = c ^ 0x20;
            sum = (uint8_t)(sum + '}' + (c ^ 0x20));
        } else {
            if (o + 1 > cap - 3)
                return 0;
            out[o++] = c;
            sum = (uint8_t)(sum + c);
        }
    }
    out[o++] = '#';
    sfi_hex_encode(&sum, 1, (char *)out + o);
    o += 2;
    return o;
}

void sfi_rsp_dec_init(struct sfi_rsp_dec *d, uint8_t *buf, size_t cap)
{
    memset(d, 0, sizeof *d);
    d->buf = buf;
    d->cap = cap;
}

static void put(struct sfi_rsp_dec *d, uint8_t c)
{
    if (d->err)
        return;
    if (d->len >= d->cap) {
        d->err = SFI_RSP_TOO_LONG;
        return;
    }
    d->buf[d->len++] = c;
}

enum sfi_rsp_event sfi_rsp_feed(struct sfi_rsp_dec *d, uint8_t c)
{
    switch (d->state) {
    case S_IDLE:
        if (c == '$') {
            d->state = S_DATA;
            d->len = 0;
            d->sum = 0;
            d->err = 0;
            return SFI_RSP_NONE;
        }
        if (c == '+')
            return SFI_RSP_ACK;
        if (c == '-')
            return SFI_RSP_NAK;
        if (c == 0x03)
            return SFI_RSP_INTERRUPT;
        d->skipped++;
        return SFI_RSP_NONE;
    case S_DATA:
        if (c == '#') {
            d->state = S_CS1;
            return SFI_RSP_NONE;
        }
        if (c == '$') { /* a new packet starts inside this one: the old one is lost */
            d->len = 0;
            d->sum = 0;
            d->err = 0;
            return SFI_RSP_BAD_CHECKSUM;
        }
        d->sum = (uint8_t)(d->sum + c);
        if (c == '}')
            d->state = S_ESC;
        else if (c == '*')
            d->state = S_RLE;
        else
            put(d, c);
        return SFI_RSP_NONE;
    case S_ESC:
        d->sum = (uint8_t)(d->sum + c);
        put(d, c ^ 0x20);
        d->state = S_DATA;
        return SFI_RSP_NONE;
    case S_RLE: {
        d->sum = (uint8_t)(d->sum + c);
        d->state = S_DATA;
        /* the count byte is n + 29, printable: 3 <= n <= 97 more copies of the last byte */
        if (d->len == 0 || c < 32 || c > 126) {
            if (!d->err)
                d->err = SFI_RSP_BAD_RLE;
            return SFI_RSP_NONE;
        }
        uint8_t last = d->buf[d->len - 1];
        for (int i = 0; i < c - 29; i++)
            put(d, last);
        return SFI_RSP_NONE;
    }
    case S_CS1: {
        int v = sfi_hexval(c);
        d->cs = (uint8_t)((v < 0 ? 0 : v) << 4);
        if (v < 0 && !d->err)
            d->err = SFI_RSP_BAD_CHECKSUM;
        d->state = S_CS2;
        return SFI_RSP_NONE;
    }
    default: { /* S_CS2 */
        int v = sfi_hexval(c);
        d->state = S_IDLE;
        d->skipped = 0;
        if (d->err)
            return (enum sfi_rsp_event)d->err;
        if (v < 0 || (uint8_t)(d->cs | v) != d->sum)
            return SFI_RSP_BAD_CHECKSUM;
        return SFI_RSP_PACKET;
    }
    }
}

uint64_t sfi_rsp_hexnum(const char *s, size_t n, size_t *used)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && i < 16; i++) {
        int h = sfi_hexval((uint8_t)s[i]);
        if (h < 0)
            break;
        v = v << 4 | (uint64_t)h;
    }
    *used = i;
    return v;
}

int sfi_rsp_is_error(const uint8_t *payload, size_t n, unsigned *code)
{
    uint8_t b;
    if (n == 3 && payload[0] == 'E' && sfi_hex_decode((const char *)payload + 1, 1, &b) == 0) {
        *code = b;
        return 1;
    }
    if (n >= 2 && payload[0] == 'E' && payload[1] == '.') {
        *code = 0;
        return 1;
    }
    return 0;
}

void sfi_rsp_supported(const uint8_t *b, size_t n, struct sfi_rsp_features *f)
{
    memset(f, 0, sizeof *f);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && b[j] != ';')
            j++;
        if (j - i >= 11 && memcmp(b + i, "PacketSize=", 11) == 0) {
            size_t used;
            uint64_t v = sfi_rsp_hexnum((const char *)b + i + 11, j - i - 11, &used);
            f->has_packet_size = 1;
            if (used == 0 || used != j - i - 11)
                f->packet_size = 0;
            else
                f->packet_size = v > 0xFFFFFFFFu ? 0xFFFFFFFFu : v;
        } else if (j - i == 16 && memcmp(b + i, "QStartNoAckMode+", 16) == 0) {
            f->noack = 1;
        }
        i = j + 1;
    }
}
