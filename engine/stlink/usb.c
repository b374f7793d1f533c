/* usb.c: the ST-LINK USB transport on libusb-1.0: probe models and their endpoints,
 * enumeration and selection by serial, interface claim, one command = a 16-byte CDB on the
 * OUT endpoint then the data phase; and the one place where libusb errors become sfirun
 * errors (the LIBUSB_ERROR_* name is kept in the detail; EACCES points at the udev rules). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/stlink.h"
#include "sfi/stlink_proto.h"
#include "sfi/trace.h"
#include "stlink/usb_int.h"

#if SFI_WITH_USB
#include <libusb.h>

struct usbt {
    struct sfi_stlink_transport base;
    sfi_stlink_bulk_fn bulk;
    sfi_stlink_release_fn release;
    void *h;
    uint8_t tx, rx;
};

void sfi_stlink_usb_endpoints(uint16_t pid, uint8_t *tx, uint8_t *rx)
{
    *rx = 0x81;
    *tx = (pid == 0x3744 || pid == 0x3748) ? 0x02 : 0x01; /* V1/V2: 0x02, later: 0x01 */
}

int sfi_stlink_usb_maperr(struct sfi_ctx *ctx, int lrc, const char *op)
{
    int rc;
    const char *hint = "";
    switch (lrc) {
    case LIBUSB_SUCCESS:
        return SFI_OK;
    case LIBUSB_ERROR_ACCESS:
        rc = SFI_E_ACCESS;
        hint = "; install " SFI_STLINK_UDEV_RULES " into /etc/udev/rules.d/, run "
               "'udevadm control --reload' and replug the probe";
        break;
    case LIBUSB_ERROR_NO_DEVICE:
        rc = SFI_E_NO_DEVICE;
        break;
    case LIBUSB_ERROR_NOT_FOUND:
        rc = SFI_E_NOT_FOUND;
        break;
    case LIBUSB_ERROR_BUSY:
        rc = SFI_E_BUSY;
        hint = "; another program holds the probe";
        break;
    case LIBUSB_ERROR_TIMEOUT:
        rc = SFI_E_TIMEOUT;
        break;
    case LIBUSB_ERROR_OVERFLOW:
        rc = SFI_E_PROTOCOL;
        break;
    case LIBUSB_ERROR_INVALID_PARAM:
        rc = SFI_E_INVALID;
        break;
    case LIBUSB_ERROR_NO_MEM:
        rc = SFI_E_NOMEM;
        break;
    case LIBUSB_ERROR_NOT_SUPPORTED:
        rc = SFI_E_UNSUPPORTED;
        break;
    default: /* IO, PIPE (stall), INTERRUPTED, OTHER */
        rc = SFI_E_IO;
        break;
    }
    return sfi_seterr(ctx, rc, "%s: %s (%s)%s", op, libusb_error_name(lrc), libusb_strerror(lrc),
                      hint);
}

static int usb_xfer(struct sfi_stlink_transport *t, const uint8_t cdb[16],
                    enum sfi_stlink_dir dir, uint8_t *data, size_t len, unsigned timeout_ms)
{
    struct usbt *u = (struct usbt *)t;
    char op[40];
    char name[32];
    snprintf(op, sizeof op, "ST-LINK %s", sfi_stlink_cmd_label(cdb, name, sizeof name));
    if (len > SFI_STLINK_BUF_SIZE + 16)
        return sfi_seterr(t->ctx, SFI_E_INVALID, "%s: %zu data bytes", op, len);
    uint8_t c[16];
    memcpy(c, cdb, 16);
    int done = 0;
    int lrc = u->bulk(u->h, u->tx, c, 16, &done, timeout_ms);
    sfi_trace_writer_usb_bulk(t->record, u->tx, c, 16, 16, lrc == 0 ? 0 : -32);
    if (lrc == 0 && done != 16)
        return sfi_seterr(t->ctx, SFI_E_IO, "%s: %d of 16 command bytes sent", op, done);
    if (lrc != 0)
        return sfi_stlink_usb_maperr(t->ctx, lrc, op);
    if (len == 0)
        return SFI_OK;
    done = 0;
    lrc = u->bulk(u->h, dir == SFI_STLINK_OUT ? u->tx : u->rx, data, (int)len, &done,
                  timeout_ms);
    sfi_trace_writer_usb_bulk(t->record, dir == SFI_STLINK_OUT ? u->tx : u->rx, data,
                              done > 0 ? (size_t)done : 0, len, lrc == 0 ? 0 : -32);
    if (lrc != 0)
        return sfi_stlink_usb_maperr(t->ctx, lrc, op);
    if ((size_t)done != len)
        return sfi_seterr(t->ctx, dir == SFI_STLINK_OUT ? SFI_E_IO : SFI_E_PROTOCOL,
                          "%s: %s %d of %zu data bytes", op,
                          dir == SFI_STLINK_OUT ? "sent" : "short reply:", done, len);
    return SFI_OK;
}

static void usb_close(struct sfi_stlink_transport *t)
{
    struct usbt *u = (struct usbt *)t;
    if (u->release != NULL)
        u->release(u->h);
    free(u);
}

static const struct sfi_stlink_transport_ops usb_ops = {
    .name = "usb",
    .xfer = usb_xfer,
    .close = usb_close,
};

int sfi_stlink_usb_wrap(struct sfi_ctx *ctx, sfi_stlink_bulk_fn bulk, sfi_stlink_release_fn rel,
                        void *h, uint16_t pid, const char *serial,
                        struct sfi_stlink_transport **out)
{
    if (!sfi_stlink_usb_pid_known(pid))
        return sfi_seterr(ctx, SFI_E_NOT_FOUND, "USB product 0483:%04x is not a supported "
                          "ST-LINK", pid);
    struct usbt *u = calloc(1, sizeof *u);
    if (u == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "USB transport");
    u->base.ops = &usb_ops;
    u->base.ctx = ctx;
    u->base.vid = SFI_STLINK_VID;
    u->base.pid = pid;
    snprintf(u->base.serial, sizeof u->base.serial, "%s", serial ? serial : "");
    u->bulk = bulk;
    u->release = rel;
    u->h = h;
    sfi_stlink_usb_endpoints(pid, &u->tx, &u->rx);
    *out = &u->base;
    return SFI_OK;
}

/* ---- libusb -------------------------------------------------------------------------- */

struct lusb {
    libusb_context *uctx;
    libusb_device_handle *dh;
};

static int lusb_bulk(void *h, unsigned char ep, unsigned char *buf, int len, int *done,
                     unsigned timeout_ms)
{
    struct lusb *l = h;
    return libusb_bulk_transfer(l->dh, ep, buf, len, done, timeout_ms);
}

static void lusb_release(void *h)
{
    struct lusb *l = h;
    if (l->dh != NULL) {
        libusb_release_interface(l->dh, 0);
        libusb_close(l->dh);
    }
    libusb_exit(l->uctx);
    free(l);
}

/* Serial as the probe reports it; old probes report 12 raw bytes, shown as 24 hex digits. */
static void read_serial(libusb_device_handle *dh, uint8_t idx, char *out, size_t n)
{
    unsigned char raw[64];
    out[0] = '\0';
    int k = idx ? libusb_get_string_descriptor_ascii(dh, idx, raw, sizeof raw - 1) : 0;
    if (k <= 0)
        return;
    raw[k] = '\0';
    int printable = 1;
    for (int i = 0; i < k; i++)
        if (raw[i] < 0x21 || raw[i] > 0x7E || raw[i] == '?')
            printable = 0;
    if (printable || k != 12) {
        size_t m = (size_t)k < n - 1 ? (size_t)k : n - 1; /* truncating is fine: a label */
        memcpy(out, raw, m);
        out[m] = '\0';
        return;
    }
    unsigned char u16[64];
    int m = libusb_get_string_descriptor(dh, idx, 0x0409, u16, sizeof u16);
    size_t o = 0;
    for (int i = 2; i + 1 < m && o + 2 < n; i += 2)
        o += (size_t)snprintf(out + o, n - o, "%02X", u16[i]);
}

/* Opens the first matching probe: serial NULL matches any. */
static int lusb_open(struct sfi_ctx *ctx, const char *serial, int want_index, int *index,
                     struct sfi_stlink_transport **out)
{
    struct lusb *l = calloc(1, sizeof *l);
    if (l == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "USB transport");
    int lrc = libusb_init(&l->uctx);
    if (lrc != 0) {
        free(l);
        return sfi_stlink_usb_maperr(ctx, lrc, "libusb_init");
    }
    libusb_device **list;
    ssize_t nd = libusb_get_device_list(l->uctx, &list);
    if (nd < 0) {
        libusb_exit(l->uctx);
        free(l);
        return sfi_stlink_usb_maperr(ctx, (int)nd, "libusb_get_device_list");
    }
    int rc = SFI_E_NOT_FOUND, seen = 0, access_rc = SFI_OK;
    char sn[33];
    uint16_t pid = 0;
    for (ssize_t i = 0; i < nd && rc == SFI_E_NOT_FOUND; i++) {
        struct libusb_device_descriptor d;
        if (libusb_get_device_descriptor(list[i], &d) != 0 || d.idVendor != SFI_STLINK_VID ||
            !sfi_stlink_usb_pid_known(d.idProduct))
            continue;
        if (want_index >= 0 && seen++ != want_index)
            continue;
        libusb_device_handle *dh;
        lrc = libusb_open(list[i], &dh);
        if (lrc != 0) {
            access_rc = sfi_stlink_usb_maperr(ctx, lrc, "libusb_open");
            if (want_index >= 0)
                rc = access_rc;
            continue;
        }
        read_serial(dh, d.iSerialNumber, sn, sizeof sn);
        if (serial != NULL && strcmp(serial, sn) != 0) {
            libusb_close(dh);
            continue;
        }
        libusb_set_auto_detach_kernel_driver(dh, 1);
        lrc = libusb_claim_interface(dh, 0);
        if (lrc != 0) {
            rc = sfi_stlink_usb_maperr(ctx, lrc, "libusb_claim_interface");
            libusb_close(dh);
            break;
        }
        l->dh = dh;
        pid = d.idProduct;
        rc = SFI_OK;
    }
    libusb_free_device_list(list, 1);
    if (rc == SFI_E_NOT_FOUND && access_rc != SFI_OK)
        rc = access_rc; /* a probe we could not open explains "not found" better */
    else if (rc == SFI_E_NOT_FOUND)
        rc = sfi_seterr(ctx, SFI_E_NOT_FOUND, "no ST-LINK%s%s on USB", serial ? " with serial " : "",
                        serial ? serial : "");
    if (rc == SFI_OK)
        rc = sfi_stlink_usb_wrap(ctx, lusb_bulk, lusb_release, l, pid, sn, out);
    else
        lusb_release(l);
    if (index != NULL)
        *index = seen;
    return rc;
}

int sfi_stlink_usb_open(struct sfi_ctx *ctx, const char *serial,
                        struct sfi_stlink_transport **out)
{
    return lusb_open(ctx, serial, -1, NULL, out);
}

int sfi_stlink_usb_list(struct sfi_ctx *ctx, sfi_stlink_found_fn found, void *ud)
{
    for (int i = 0; i < 64; i++) {
        struct sfi_stlink_transport *t;
        int seen = 0;
        int rc = lusb_open(ctx, NULL, i, &seen, &t);
        if (seen <= i)
            return SFI_OK; /* no more probes */
        struct sfi_stlink_info info;
        memset(&info, 0, sizeof info);
        info.vid = SFI_STLINK_VID;
        if (rc != SFI_OK) {
            info.in_use = rc == SFI_E_BUSY;
            found(ud, &info);
            continue;
        }
        memcpy(info.serial, t->serial, sizeof info.serial);
        info.pid = t->pid;
        struct sfi_stlink *s;
        if (sfi_stlink_open(ctx, t, &s) == SFI_OK) {
            sfi_stlink_version_str(sfi_stlink_get_version(s), info.version, sizeof info.version);
            sfi_stlink_close(s);
        }
        found(ud, &info);
    }
    return SFI_OK;
}

#else /* !SFI_WITH_USB */

int sfi_stlink_usb_open(struct sfi_ctx *ctx, const char *serial,
                        struct sfi_stlink_transport **out)
{
    return sfi_seterr(ctx, SFI_E_UNSUPPORTED, "built without USB support");
}

int sfi_stlink_usb_list(struct sfi_ctx *ctx, sfi_stlink_found_fn found, void *ud)
{
    return sfi_seterr(ctx, SFI_E_UNSUPPORTED, "built without USB support");
}

#endif
