/* trace_int.h: internals of the capture reader shared by its files: the reader state, the
 * bounded TCP flow and USB device tables, and the record queue. */
#ifndef SFI_TRACE_INT_H
#define SFI_TRACE_INT_H

#include <pcap/pcap.h>

#include "sfi/trace.h"

#define TR_MAX_FLOWS 64
#define TR_MAX_DEVS 32
#define TR_MAX_HELD 64                /* out-of-order segments held per direction */
#define TR_MAX_HELD_BYTES (1u << 20)  /* and their bytes */
#define TR_MAX_PENDING 256            /* requests waiting for their reply, per connection */
#define TR_MAX_REQ (SFI_STLINK_SRV_HDR_LEN + 0x10000u)

struct tr_seg {
    uint32_t seq;
    size_t n;
    uint8_t *p;
};

struct tr_half {
    int known;
    uint32_t next;
    uint8_t *buf;
    size_t len, cap;
    struct tr_seg held[TR_MAX_HELD];
    unsigned nheld;
    size_t held_bytes;
    int resync;
    int fin;
    int peer_acked;      /* the peer acknowledged up to peer_ack: bytes before it were sent */
    uint32_t peer_ack;
};

struct tr_pend {
    uint8_t *req;
    size_t len;
};

struct tr_flow {
    int used;
    unsigned id;
    uint8_t ip[2][16];   /* [0] client, [1] server */
    unsigned port[2];
    struct tr_half h[2]; /* [0] client -> server, [1] server -> client */
    struct tr_pend pend[TR_MAX_PENDING];
    unsigned phead, pcount;
    int srv_drop;
    int counted;
};

struct tr_dev {
    int used;
    unsigned id;
    unsigned bus, dev;
    int state;           /* 0 unknown, 1 ST-LINK, -1 another device */
    uint16_t vid, pid;
    int have;            /* a command is waiting for its data phase */
    uint8_t cdb[16];
    size_t want_out, want_in;
    uint8_t *out, *in;
    size_t out_len, in_len;
    int usb_status;
    int counted;
};

struct tr_qrec {
    struct sfi_trace_rec rec;
    uint8_t *b1, *b2;    /* owned buffers the record points into */
};

struct sfi_trace {
    struct sfi_ctx *ctx;
    pcap_t *pcap;
    struct sfi_trace_opts opts;
    struct sfi_trace_stats st;
    double t0;
    int have_t0;
    double now;
    uint64_t frame;
    unsigned next_id;
    struct tr_flow *flows[TR_MAX_FLOWS]; /* allocated on first use, reused */
    struct tr_dev devs[TR_MAX_DEVS];
    struct tr_qrec *q;
    size_t qn, qcap, qhead;
    struct tr_qrec cur;  /* the record last handed out */
    int ended;
    int oom;
};

/* Queues a record; takes ownership of b1/b2 (freed with the record). */
void tr_emit(struct sfi_trace *tr, const struct sfi_trace_rec *r, uint8_t *b1, uint8_t *b2);
void tr_note(struct sfi_trace *tr, unsigned stream, const char *via, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Fills the decoded fields of a CMD record from its CDB and data (decode.c). */
void tr_decode_cmd(struct sfi_trace_rec *r);

/* tcp.c: one TCP segment; addresses 16 bytes (IPv4 mapped). */
void tr_tcp_segment(struct sfi_trace *tr, const uint8_t src[16], unsigned sport,
                    const uint8_t dst[16], unsigned dport, uint32_t seq, uint32_t ack,
                    unsigned flags, const uint8_t *p, size_t n, size_t missing);
void tr_tcp_end(struct sfi_trace *tr);
void tr_tcp_free(struct sfi_trace *tr);

/* usb.c: one URB event. */
struct tr_urb {
    unsigned bus, dev, ep;  /* ep: bit 7 = IN */
    unsigned xfer;          /* 0 iso, 1 interrupt, 2 control, 3 bulk */
    int submit;             /* 1 submission, 0 completion */
    int status;             /* 0 = success */
    const uint8_t *data;
    size_t n;
};
void tr_usb_urb(struct sfi_trace *tr, const struct tr_urb *u);
void tr_usb_end(struct sfi_trace *tr);
void tr_usb_free(struct sfi_trace *tr);

#define TCP_FIN 0x01u
#define TCP_SYN 0x02u
#define TCP_RST 0x04u
#define TCP_ACK 0x10u

#endif
