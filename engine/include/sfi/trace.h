/* trace.h: ST-LINK traffic captures. A reader (engine/trace/reader.c) takes pcap or pcapng
 * files through libpcap, reassembles stlink-server TCP streams and follows ST-LINK USB
 * devices (usbmon, USBPcap), and hands out one record per ST-LINK command or stlink-server
 * request, decoded with the protocol table (sfi/stlink_proto.h). A writer (record.c) records
 * sfirun's own probe sessions in the same formats. */
#ifndef SFI_TRACE_H
#define SFI_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "sfi/sfi.h"
#include "sfi/stlink_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reader ------------------------------------------------------------------------------ */

enum sfi_trace_kind {
    SFI_TRACE_CMD = 0, /* one ST-LINK command with its data phase */
    SFI_TRACE_SERVER,  /* one stlink-server request other than SEND_USB_CMD */
    SFI_TRACE_GAP,     /* bytes lost in a TCP stream (the decoder resynchronises after it) */
    SFI_TRACE_NOTE,    /* something the decoder noticed (text) */
};

struct sfi_trace_rec {
    enum sfi_trace_kind kind;
    uint64_t frame;       /* capture frame number (1-based) that completed the record */
    double t;             /* seconds since the first frame */
    unsigned stream;      /* 1-based: TCP connection or USB device */
    const char *via;      /* "tcp" or "usb" */
    /* SFI_TRACE_CMD */
    uint8_t cdb[16];
    const struct sfi_stlink_cmd *cmd; /* NULL: unknown command */
    const uint8_t *out;   /* OUT data (size out_len) */
    size_t out_len;
    const uint8_t *in;    /* IN data as received (size in_len; in_want asked for) */
    size_t in_len, in_want;
    int replied;          /* the reply (or data phase) was seen */
    int has_server_status;
    uint32_t server_status; /* stlink-server status word (TCP) */
    int usb_status;       /* USB completion status, 0 = success */
    /* decoded from the CDB and reply with the table */
    uint32_t addr, len, value;
    unsigned ap;          /* memory commands: AP number; DAP commands: port (0xFFFF = DP) */
    int has_addr, has_value;
    int status;           /* ST-LINK status byte, -1 when the reply has none */
    /* SFI_TRACE_SERVER */
    const struct sfi_stlink_srv_req *req;
    const uint8_t *req_bytes, *rep_bytes;
    size_t req_len, rep_len;
    /* SFI_TRACE_GAP */
    uint64_t gap_bytes;
    int to_server;        /* the lost bytes travelled host -> probe */
    /* SFI_TRACE_NOTE, and a short description for the others */
    char text[160];
};

struct sfi_trace_stats {
    uint64_t frames, tcp_segments, other_ip, non_ip, usb_urbs;
    unsigned tcp_flows, stlink_flows, usb_devices, stlink_devices;
    uint64_t records, gaps, dropped; /* dropped: requests or bytes given up (limits) */
    unsigned ports[8];    /* TCP ports seen (the first 8 distinct server-side ports) */
    unsigned nports;
    int linktype;
    char linkname[48];
    char usb_ids[8][16];  /* "0483:374b": USB devices seen by descriptor */
    unsigned nusb_ids;
};

struct sfi_trace_opts {
    unsigned port;        /* stlink-server port, 0 = 7184 */
    int all_ports;        /* look for stlink-server traffic on every TCP port */
};

struct sfi_trace;

/* Opens a capture. Errors: SFI_E_NOT_FOUND (no file), SFI_E_ACCESS (unreadable), SFI_E_FORMAT
 * (not a pcap/pcapng file, or a link type the reader does not know: the detail names it),
 * SFI_E_NOMEM. *out owned by the caller (sfi_trace_close). */
int sfi_trace_open(struct sfi_ctx *ctx, const char *path, const struct sfi_trace_opts *opts,
                   struct sfi_trace **out);
/* A reader without a file, fed with sfi_trace_feed_* (tests, fuzzing). */
int sfi_trace_new(struct sfi_ctx *ctx, const struct sfi_trace_opts *opts, struct sfi_trace **out);
void sfi_trace_close(struct sfi_trace *tr);
/* The next record: *rec points into tr and stays valid until the next call; NULL at the end.
 * Errors: SFI_E_FORMAT (the file is damaged or cut short: the records before it were good). */
int sfi_trace_next(struct sfi_trace *tr, const struct sfi_trace_rec **rec);
const struct sfi_trace_stats *sfi_trace_stats(const struct sfi_trace *tr);

/* Feeding (sfi_trace_new readers): one captured frame of the given link type (a DLT_ value)
 * at time t; or one TCP segment between two endpoints (addresses as 16 bytes, IPv4 mapped). */
int sfi_trace_feed_frame(struct sfi_trace *tr, int linktype, double t, const uint8_t *p,
                         size_t n, size_t wire_len);
/* Marks the end of the input: held segments and pending requests come out. */
void sfi_trace_feed_end(struct sfi_trace *tr);


/* ---- writer ------------------------------------------------------------------------------ */

enum sfi_trace_wkind {
    SFI_TRACE_W_TCP = 0, /* Ethernet + IPv4/TCP (stlink-server sessions) */
    SFI_TRACE_W_USB,     /* Linux usbmon (mmapped header): USB sessions */
};

struct sfi_trace_writer;

/* Creates path's temporary sibling (mode 0600) that sfi_trace_writer_close renames to path.
 * Errors: SFI_E_ACCESS / SFI_E_NOT_FOUND / SFI_E_IO (the detail names the path and why),
 * SFI_E_NOMEM. */
int sfi_trace_writer_open(struct sfi_ctx *ctx, const char *path, enum sfi_trace_wkind kind,
                          struct sfi_trace_writer **out);
/* TCP: the connection's endpoints (IPv4, host order) and a handshake. */
void sfi_trace_writer_tcp_connect(struct sfi_trace_writer *w, uint32_t client_ip,
                                  unsigned client_port, uint32_t server_ip, unsigned server_port);
/* TCP: bytes the client sent (to_server) or received. */
void sfi_trace_writer_tcp_data(struct sfi_trace_writer *w, int to_server, const uint8_t *p,
                               size_t n);
/* USB: the device descriptor of the probe (so readers recognise it). */
void sfi_trace_writer_usb_device(struct sfi_trace_writer *w, uint16_t vid, uint16_t pid);
/* USB: one bulk transfer on endpoint ep (bit 7 = IN): submission and completion. status is
 * 0 or a negative errno-style value; for IN, p/n are the bytes received. */
void sfi_trace_writer_usb_bulk(struct sfi_trace_writer *w, unsigned ep, const uint8_t *p,
                               size_t n, size_t asked, int status);
/* Closes: TCP gets its FIN exchange; the file is flushed, renamed to its final name and made
 * 0600. NULL-safe. Errors are logged (the session itself is over). */
void sfi_trace_writer_close(struct sfi_trace_writer *w);

#ifdef __cplusplus
}
#endif
#endif
