/* usbdev.c: ST-LINK USB traffic in a capture. Follows up to 32 devices by bus and address; a
 * device is an ST-LINK when its device descriptor says so (VID 0483 with a known ST-LINK PID)
 * or when it carries 16-byte command blocks the protocol table knows; other devices are
 * ignored. A command is a bulk OUT of 16 bytes, then the data phase the table gives it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/bytes.h"
#include "sfi/stlink.h"
#include "trace/trace_int.h"

static struct tr_dev *dev_find(struct sfi_trace *tr, unsigned bus, unsigned dev)
{
    struct tr_dev *free_slot = NULL;
    for (unsigned i = 0; i < TR_MAX_DEVS; i++) {
        struct tr_dev *d = &tr->devs[i];
        if (d->used && d->bus == bus && d->dev == dev)
            return d;
        if (!d->used && free_slot == NULL)
            free_slot = d;
    }
    if (free_slot == NULL) {
        tr->st.dropped++;
        return NULL;
    }
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->used = 1;
    free_slot->bus = bus;
    free_slot->dev = dev;
    tr->st.usb_devices++;
    return free_slot;
}

static void emit_cmd(struct sfi_trace *tr, struct tr_dev *d, int complete)
{
    struct sfi_trace_rec r;
    memset(&r, 0, sizeof r);
    r.kind = SFI_TRACE_CMD;
    r.stream = d->id;
    r.via = "usb";
    memcpy(r.cdb, d->cdb, 16);
    r.out = d->out;
    r.out_len = d->out_len;
    r.in = d->in;
    r.in_len = d->in_len;
    r.in_want = d->want_in;
    r.replied = complete;
    r.usb_status = d->usb_status;
    tr_decode_cmd(&r);
    tr_emit(tr, &r, d->out, d->in);
    d->out = d->in = NULL;
    d->out_len = d->in_len = 0;
    d->have = 0;
    d->usb_status = 0;
}

static int append(struct sfi_trace *tr, uint8_t **buf, size_t *len, size_t want,
                  const uint8_t *p, size_t n)
{
    if (*len + n > want)
        n = want - *len;
    if (n == 0)
        return 0;
    if (*buf == NULL) {
        *buf = malloc(want);
        if (*buf == NULL) {
            tr->oom = 1;
            return -1;
        }
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    return 0;
}

static void mark_stlink(struct sfi_trace *tr, struct tr_dev *d)
{
    if (d->state == 1)
        return;
    d->state = 1;
    if (d->id == 0)
        d->id = ++tr->next_id;
    if (!d->counted) {
        d->counted = 1;
        tr->st.stlink_devices++;
    }
}

/* A 16-byte bulk OUT that the table knows, with zero padding after its arguments' span. */
static int looks_like_cdb(const uint8_t *p, size_t n)
{
    if (n != 16)
        return 0;
    const struct sfi_stlink_cmd *c = sfi_stlink_cmd_find(p);
    if (c == NULL)
        return 0;
    for (size_t i = 12; i < 16; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

void tr_usb_urb(struct sfi_trace *tr, const struct tr_urb *u)
{
    struct tr_dev *d = dev_find(tr, u->bus, u->dev);
    if (d == NULL)
        return;
    /* the device descriptor names the device */
    if (u->xfer == 2 && !u->submit && u->n >= 18 && u->data[0] == 18 && u->data[1] == 1) {
        d->vid = sfi_get_le16(u->data + 8);
        d->pid = sfi_get_le16(u->data + 10);
        if (tr->st.nusb_ids < 8) {
            snprintf(tr->st.usb_ids[tr->st.nusb_ids++], sizeof tr->st.usb_ids[0], "%04x:%04x",
                     d->vid, d->pid);
        }
        if (d->vid == SFI_STLINK_VID && sfi_stlink_usb_pid_known(d->pid))
            mark_stlink(tr, d);
        else
            d->state = -1;
        return;
    }
    if (u->xfer != 3 || d->state < 0)
        return;
    int in = (u->ep & 0x80) != 0;
    if (!in && u->submit) {
        if (d->have && d->want_out > d->out_len) {
            if (append(tr, &d->out, &d->out_len, d->want_out, u->data, u->n) == 0 &&
                d->out_len == d->want_out)
                emit_cmd(tr, d, 1);
            return;
        }
        if (!looks_like_cdb(u->data, u->n))
            return;
        if (d->have)
            emit_cmd(tr, d, 0); /* its data phase never came */
        mark_stlink(tr, d);
        memcpy(d->cdb, u->data, 16);
        const struct sfi_stlink_cmd *c = sfi_stlink_cmd_find(d->cdb);
        d->want_out = sfi_stlink_cmd_out_len(c, d->cdb);
        d->want_in = sfi_stlink_cmd_in_len(c, d->cdb);
        d->have = 1;
        if (d->want_out == 0 && d->want_in == 0)
            emit_cmd(tr, d, 1);
        return;
    }
    if (!d->have)
        return;
    if (!in && !u->submit && u->status != 0) {
        d->usb_status = u->status;
        emit_cmd(tr, d, 0);
        return;
    }
    if (in && !u->submit && d->want_in > 0) {
        if (u->status != 0)
            d->usb_status = u->status;
        if (append(tr, &d->in, &d->in_len, d->want_in, u->data, u->n) != 0)
            return;
        if (d->in_len == d->want_in || u->status != 0 || u->n == 0)
            emit_cmd(tr, d, 1);
    }
}

void tr_usb_end(struct sfi_trace *tr)
{
    for (unsigned i = 0; i < TR_MAX_DEVS; i++)
        if (tr->devs[i].used && tr->devs[i].have)
            emit_cmd(tr, &tr->devs[i], 0);
}

void tr_usb_free(struct sfi_trace *tr)
{
    for (unsigned i = 0; i < TR_MAX_DEVS; i++) {
        free(tr->devs[i].out);
        free(tr->devs[i].in);
        memset(&tr->devs[i], 0, sizeof tr->devs[i]);
    }
}
