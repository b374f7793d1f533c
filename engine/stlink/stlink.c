/* stlink.c: the ST-LINK client session. Builds the command blocks (CDBs), checks status
 * replies through status.c, retries WAIT with exponential backoff, and splits memory
 * transfers into chunks the probe accepts (buffer size, TAR window, 8-bit limits, alignment),
 * checking every chunk with GETLASTRWSTATUS(2). Knows nothing of USB or TCP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/bytes.h"
#include "sfi/stlink.h"
#include "sfi/stlink_proto.h"

#define WAIT_RETRIES 8

struct sfi_stlink {
    struct sfi_ctx *ctx;
    struct sfi_stlink_transport *t;
    struct sfi_stlink_version v;
    unsigned timeout_ms;
    unsigned tar_window;
};

void sfi_stlink_transport_close(struct sfi_stlink_transport *t)
{
    if (t != NULL && t->ops != NULL && t->ops->close != NULL)
        t->ops->close(t);
}

static int xfer(struct sfi_stlink *s, const uint8_t cdb[16], enum sfi_stlink_dir dir,
                uint8_t *data, size_t len)
{
    if (sfi_canceled(s->ctx)) {
        char name[32];
        return sfi_seterr(s->ctx, SFI_E_CANCELED, "ST-LINK %s canceled",
                          sfi_stlink_cmd_label(cdb, name, sizeof name));
    }
    return s->t->ops->xfer(s->t, cdb, dir, data, len, s->timeout_ms);
}

/* Backoff before retry number i (0-based): 1, 2, 4, ... ms. */
static int wait_backoff(struct sfi_stlink *s, int i)
{
    return sfi_sleep_ms(s->ctx, 1u << i);
}

static int wait_exhausted(struct sfi_stlink *s, unsigned status, const char *op)
{
    return sfi_seterr(s->ctx, SFI_E_TIMEOUT, "%s: ST-LINK status %s (0x%02x) after %d retries",
                      op, sfi_stlink_status_name(status), status, WAIT_RETRIES);
}

/* A command whose IN reply starts with a status byte; retried while WAIT. */
static int cmd_status(struct sfi_stlink *s, const uint8_t cdb[16], uint8_t *rep, size_t rlen,
                      const char *op)
{
    for (int i = 0;; i++) {
        memset(rep, 0, rlen);
        int rc = xfer(s, cdb, SFI_STLINK_IN, rep, rlen);
        if (rc != SFI_OK)
            return rc;
        if (!sfi_stlink_status_is_wait(rep[0]))
            return sfi_stlink_status_err(s->ctx, rep[0], op);
        if (i == WAIT_RETRIES)
            return wait_exhausted(s, rep[0], op);
        rc = wait_backoff(s, i);
        if (rc != SFI_OK)
            return rc;
    }
}

static void cdb2(uint8_t cdb[16], unsigned b0, unsigned b1)
{
    memset(cdb, 0, 16);
    cdb[0] = (uint8_t)b0;
    cdb[1] = (uint8_t)b1;
}

int sfi_stlink_open(struct sfi_ctx *ctx, struct sfi_stlink_transport *t,
                    struct sfi_stlink **out)
{
    if (t == NULL)
        return sfi_seterr(ctx, SFI_E_INVALID, "no ST-LINK transport");
    struct sfi_stlink *s = calloc(1, sizeof *s);
    if (s == NULL) {
        sfi_stlink_transport_close(t);
        return sfi_seterr(ctx, SFI_E_NOMEM, "ST-LINK session");
    }
    s->ctx = ctx;
    s->t = t;
    s->timeout_ms = 1000;
    s->tar_window = SFI_STLINK_TAR_WINDOW;

    uint8_t cdb[16], rep[12], ex[12];
    cdb2(cdb, SFI_STLINK_CMD_GET_VERSION, 0);
    int rc = xfer(s, cdb, SFI_STLINK_IN, rep, 6);
    if (rc == SFI_OK && sfi_stlink_needs_version_ex(rep)) {
        cdb2(cdb, SFI_STLINK_CMD_APIV3_GET_VERSION_EX, 0);
        rc = xfer(s, cdb, SFI_STLINK_IN, ex, 12);
    }
    if (rc == SFI_OK)
        rc = sfi_stlink_decode_version(ctx, rep, sfi_stlink_needs_version_ex(rep) ? ex : NULL,
                                       &s->v);
    if (rc == SFI_OK && s->v.stlink == 1)
        rc = sfi_seterr(ctx, SFI_E_UNSUPPORTED, "ST-LINK/V1 is not supported");
    if (rc == SFI_OK && s->v.jtag == 0)
        rc = sfi_seterr(ctx, SFI_E_UNSUPPORTED,
                        "ST-LINK firmware has no SWD/JTAG support (SWIM-only firmware)");
    if (rc != SFI_OK) {
        sfi_stlink_close(s);
        return rc;
    }
    *out = s;
    return SFI_OK;
}

void sfi_stlink_close(struct sfi_stlink *s)
{
    if (s == NULL)
        return;
    sfi_stlink_transport_close(s->t);
    free(s);
}

const struct sfi_stlink_version *sfi_stlink_get_version(const struct sfi_stlink *s)
{
    return &s->v;
}

struct sfi_stlink_transport *sfi_stlink_transport_of(struct sfi_stlink *s)
{
    return s->t;
}

void sfi_stlink_set_timeout(struct sfi_stlink *s, unsigned ms)
{
    s->timeout_ms = ms ? ms : 1000;
}

void sfi_stlink_set_tar_window(struct sfi_stlink *s, unsigned bytes)
{
    /* a power of two of at least 64 bytes, so that aligned chunks stay aligned */
    if (bytes >= 64 && (bytes & (bytes - 1)) == 0)
        s->tar_window = bytes;
}

int sfi_stlink_current_mode(struct sfi_stlink *s, enum sfi_stlink_mode *mode)
{
    uint8_t cdb[16], rep[2];
    cdb2(cdb, SFI_STLINK_CMD_GET_CURRENT_MODE, 0);
    int rc = xfer(s, cdb, SFI_STLINK_IN, rep, 2);
    if (rc != SFI_OK)
        return rc;
    if (rep[0] > SFI_STLINK_MODE_BOOTLOADER)
        return sfi_seterr(s->ctx, SFI_E_PROTOCOL, "GET_CURRENT_MODE: unknown mode %u", rep[0]);
    *mode = (enum sfi_stlink_mode)rep[0];
    return SFI_OK;
}

int sfi_stlink_leave_mode(struct sfi_stlink *s)
{
    enum sfi_stlink_mode mode = (enum sfi_stlink_mode)0;
    int rc = sfi_stlink_current_mode(s, &mode);
    if (rc != SFI_OK)
        return rc;
    uint8_t cdb[16];
    if (mode == SFI_STLINK_MODE_DFU)
        cdb2(cdb, SFI_STLINK_CMD_DFU, SFI_STLINK_DFU_EXIT);
    else if (mode == SFI_STLINK_MODE_DEBUG)
        cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_EXIT);
    else
        return SFI_OK;
    return xfer(s, cdb, SFI_STLINK_IN, NULL, 0);
}

int sfi_stlink_enter_swd(struct sfi_stlink *s)
{
    uint8_t cdb[16], rep[2];
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_APIV2_ENTER);
    cdb[2] = SFI_STLINK_ENTER_SWD_NO_RESET;
    return cmd_status(s, cdb, rep, 2, "APIV2_ENTER (SWD)");
}

static int set_speed_v3(struct sfi_stlink *s, unsigned khz, unsigned *actual)
{
    uint8_t cdb[16], rep[52];
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_APIV3_GET_COM_FREQ);
    cdb[2] = 0; /* SWD */
    int rc = cmd_status(s, cdb, rep, sizeof rep, "APIV3_GET_COM_FREQ");
    if (rc != SFI_OK)
        return rc;
    unsigned n = rep[8];
    if (n == 0 || n > 10)
        return sfi_seterr(s->ctx, SFI_E_PROTOCOL, "APIV3_GET_COM_FREQ: %u frequencies (1..10 expected)",
                          n);
    unsigned best = 0, lowest = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned f = sfi_get_le32(rep + 12 + 4 * i);
        if (f == 0)
            continue;
        if (f <= khz && f > best)
            best = f;
        if (lowest == 0 || f < lowest)
            lowest = f;
    }
    if (best == 0)
        best = lowest;
    if (best == 0)
        return sfi_seterr(s->ctx, SFI_E_PROTOCOL, "APIV3_GET_COM_FREQ: no usable frequency");
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_APIV3_SET_COM_FREQ);
    cdb[2] = 0;
    sfi_put_le32(cdb + 4, best);
    rc = cmd_status(s, cdb, rep, 8, "APIV3_SET_COM_FREQ");
    if (rc == SFI_OK && actual != NULL)
        *actual = best;
    return rc;
}

int sfi_stlink_set_speed(struct sfi_stlink *s, unsigned khz, unsigned *actual_khz)
{
    if (s->v.flags & SFI_STLINK_F_HAS_COM_FREQ)
        return set_speed_v3(s, khz, actual_khz);
    if (!(s->v.flags & SFI_STLINK_F_HAS_SWD_SET_FREQ))
        return sfi_seterr(s->ctx, SFI_E_UNSUPPORTED,
                          "ST-LINK firmware J%u cannot set the SWD speed (J22 or later needed)",
                          s->v.jtag);
    unsigned actual;
    unsigned div = sfi_stlink_swd_divisor(khz, &actual);
    uint8_t cdb[16], rep[2];
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_SWD_SET_FREQ);
    sfi_put_le16(cdb + 2, div);
    int rc = cmd_status(s, cdb, rep, 2, "SWD_SET_FREQ");
    if (rc == SFI_OK && actual_khz != NULL)
        *actual_khz = actual;
    return rc;
}

int sfi_stlink_voltage(struct sfi_stlink *s, unsigned *mv)
{
    if (!(s->v.flags & SFI_STLINK_F_HAS_TRACE))
        return sfi_seterr(s->ctx, SFI_E_UNSUPPORTED,
                          "ST-LINK firmware J%u cannot read the target voltage", s->v.jtag);
    uint8_t cdb[16], rep[8];
    cdb2(cdb, SFI_STLINK_CMD_GET_TARGET_VOLTAGE, 0);
    int rc = xfer(s, cdb, SFI_STLINK_IN, rep, 8);
    if (rc != SFI_OK)
        return rc;
    uint32_t adc0 = sfi_get_le32(rep), adc1 = sfi_get_le32(rep + 4);
    if (adc0 == 0)
        return sfi_seterr(s->ctx, SFI_E_PROTOCOL, "GET_TARGET_VOLTAGE: reference reading is 0");
    *mv = (unsigned)((2ull * adc1 * 1200u) / adc0);
    return SFI_OK;
}

int sfi_stlink_idcode(struct sfi_stlink *s, uint32_t *idcode)
{
    uint8_t cdb[16], rep[12];
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_APIV2_READ_IDCODES);
    int rc = cmd_status(s, cdb, rep, sizeof rep, "APIV2_READ_IDCODES");
    if (rc == SFI_OK)
        *idcode = sfi_get_le32(rep + 4);
    return rc;
}

/* ---- memory ----------------------------------------------------------------------------- */

static int last_rw_status(struct sfi_stlink *s, unsigned *status)
{
    uint8_t cdb[16], rep[12];
    size_t n = 2;
    if (s->v.flags & SFI_STLINK_F_HAS_GETLASTRWSTATUS2) {
        cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_GETLASTRWSTATUS2);
        n = 12;
    } else {
        cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_GETLASTRWSTATUS);
    }
    int rc = xfer(s, cdb, SFI_STLINK_IN, rep, n);
    if (rc == SFI_OK)
        *status = rep[0];
    return rc;
}

/* One chunk that the probe takes in a single command, checked and retried on WAIT. */
static int mem_chunk(struct sfi_stlink *s, int write, unsigned width, uint32_t addr,
                     uint8_t *buf, size_t len)
{
    static const uint8_t rd_cmd[] = {SFI_STLINK_DBG_READMEM_8BIT, SFI_STLINK_DBG_READMEM_16BIT, 0, SFI_STLINK_DBG_READMEM_32BIT};
    static const uint8_t wr_cmd[] = {SFI_STLINK_DBG_WRITEMEM_8BIT, SFI_STLINK_DBG_WRITEMEM_16BIT, 0, SFI_STLINK_DBG_WRITEMEM_32BIT};
    unsigned w = width / 8 - 1;
    uint8_t cdb[16], tmp[2];
    char op[64];
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, write ? wr_cmd[w] : rd_cmd[w]);
    char name[32];
    snprintf(op, sizeof op, "%s %u bytes at 0x%08x", sfi_stlink_cmd_label(cdb, name, sizeof name),
             (unsigned)len, (unsigned)addr);
    sfi_put_le32(cdb + 2, addr);
    sfi_put_le16(cdb + 6, (unsigned)len);
    /* cdb[8] AP 0, cdb[9..11] CSW 0: the probe's defaults */
    for (int i = 0;; i++) {
        int rc;
        unsigned st;
        if (!write && width == 8 && len == 1) {
            /* a single byte is read as a 2-byte IN transfer */
            rc = xfer(s, cdb, SFI_STLINK_IN, tmp, 2);
            if (rc == SFI_OK)
                buf[0] = tmp[0];
        } else if (s->t->ops->xfer_pair != NULL) {
            /* the command and its status query in one round trip */
            uint8_t scdb[16], srep[12];
            int two = (s->v.flags & SFI_STLINK_F_HAS_GETLASTRWSTATUS2) != 0;
            cdb2(scdb, SFI_STLINK_CMD_DEBUG, two ? SFI_STLINK_DBG_GETLASTRWSTATUS2 : SFI_STLINK_DBG_GETLASTRWSTATUS);
            rc = s->t->ops->xfer_pair(s->t, cdb, write ? SFI_STLINK_OUT : SFI_STLINK_IN, buf,
                                      len, scdb, srep, two ? 12 : 2, s->timeout_ms);
            if (rc != SFI_OK)
                return rc;
            st = srep[0];
            goto checked;
        } else {
            rc = xfer(s, cdb, write ? SFI_STLINK_OUT : SFI_STLINK_IN, buf, len);
        }
        if (rc != SFI_OK)
            return rc;
        rc = last_rw_status(s, &st);
        if (rc != SFI_OK)
            return rc;
    checked:
        if (!sfi_stlink_status_is_wait(st))
            return sfi_stlink_status_err(s->ctx, st, op);
        if (i == WAIT_RETRIES)
            return wait_exhausted(s, st, op);
        rc = wait_backoff(s, i);
        if (rc != SFI_OK)
            return rc;
    }
}

/* Splits [addr, addr+n) of one width into chunks; n is a multiple of width. */
static int mem_run(struct sfi_stlink *s, int write, unsigned width, uint32_t addr, uint8_t *buf,
                   size_t n)
{
    size_t max = SFI_STLINK_BUF_SIZE;
    if (width == 8)
        max = (s->v.flags & SFI_STLINK_F_HAS_RW8_512BYTES) ? 512 : 64;
    while (n > 0) {
        size_t room = s->tar_window - (addr & (s->tar_window - 1));
        size_t len = n < max ? n : max;
        if (len > room)
            len = room;
        int rc = mem_chunk(s, write, width, addr, buf, len);
        if (rc != SFI_OK)
            return rc;
        addr += (uint32_t)len;
        buf += len;
        n -= len;
    }
    return SFI_OK;
}

static int mem_access(struct sfi_stlink *s, int write, uint32_t addr, uint8_t *buf, size_t n,
                      unsigned width)
{
    if (width != 8 && width != 16 && width != 32)
        return sfi_seterr(s->ctx, SFI_E_INVALID, "memory access width %u (8, 16 or 32)",
                          width);
    if (width == 16 && !(s->v.flags & SFI_STLINK_F_HAS_MEM_16BIT))
        return sfi_seterr(s->ctx, SFI_E_UNSUPPORTED,
                          "ST-LINK firmware J%u has no 16-bit memory access (J26 or later)",
                          s->v.jtag);
    if (n > 0 && (uint64_t)addr + n - 1 > 0xFFFFFFFFu)
        return sfi_seterr(s->ctx, SFI_E_INVALID, "%zu bytes at 0x%08x pass the end of the "
                          "address space", n, (unsigned)addr);
    unsigned wb = width / 8;
    size_t head = (wb - (addr & (wb - 1))) & (wb - 1);
    if (head > n)
        head = n;
    size_t body = (n - head) / wb * wb;
    size_t tail = n - head - body;
    int rc = SFI_OK;
    if (head > 0)
        rc = mem_run(s, write, 8, addr, buf, head);
    if (rc == SFI_OK && body > 0)
        rc = mem_run(s, write, width, addr + (uint32_t)head, buf + head, body);
    if (rc == SFI_OK && tail > 0)
        rc = mem_run(s, write, 8, addr + (uint32_t)(head + body), buf + head + body, tail);
    return rc;
}

int sfi_stlink_read_mem(struct sfi_stlink *s, uint32_t addr, void *buf, size_t n,
                        unsigned width)
{
    return mem_access(s, 0, addr, buf, n, width);
}

int sfi_stlink_write_mem(struct sfi_stlink *s, uint32_t addr, const void *buf, size_t n,
                         unsigned width)
{
    /* the transport only reads OUT data; the cast keeps one code path */
    return mem_access(s, 1, addr, (uint8_t *)buf, n, width);
}

/* ---- registers, reset, DAP -------------------------------------------------------------- */

int sfi_stlink_read_dbg(struct sfi_stlink *s, uint32_t addr, uint32_t *v)
{
    uint8_t cdb[16], rep[8];
    char op[40];
    snprintf(op, sizeof op, "APIV2_READDEBUGREG 0x%08x", (unsigned)addr);
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_APIV2_READDEBUGREG);
    sfi_put_le32(cdb + 2, addr);
    int rc = cmd_status(s, cdb, rep, sizeof rep, op);
    if (rc == SFI_OK)
        *v = sfi_get_le32(rep + 4);
    return rc;
}

int sfi_stlink_write_dbg(struct sfi_stlink *s, uint32_t addr, uint32_t v)
{
    uint8_t cdb[16], rep[2];
    char op[40];
    snprintf(op, sizeof op, "APIV2_WRITEDEBUGREG 0x%08x", (unsigned)addr);
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_APIV2_WRITEDEBUGREG);
    sfi_put_le32(cdb + 2, addr);
    sfi_put_le32(cdb + 6, v);
    return cmd_status(s, cdb, rep, sizeof rep, op);
}

int sfi_stlink_read_reg(struct sfi_stlink *s, unsigned regsel, uint32_t *v)
{
    uint8_t cdb[16], rep[8];
    char op[32];
    snprintf(op, sizeof op, "APIV2_READREG 0x%02x", regsel);
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_APIV2_READREG);
    cdb[2] = (uint8_t)regsel;
    int rc = cmd_status(s, cdb, rep, sizeof rep, op);
    if (rc == SFI_OK)
        *v = sfi_get_le32(rep + 4);
    return rc;
}

int sfi_stlink_write_reg(struct sfi_stlink *s, unsigned regsel, uint32_t v)
{
    uint8_t cdb[16], rep[2];
    char op[32];
    snprintf(op, sizeof op, "APIV2_WRITEREG 0x%02x", regsel);
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_APIV2_WRITEREG);
    cdb[2] = (uint8_t)regsel;
    sfi_put_le32(cdb + 3, v);
    return cmd_status(s, cdb, rep, sizeof rep, op);
}

int sfi_stlink_reset_sys(struct sfi_stlink *s)
{
    uint8_t cdb[16], rep[2];
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_APIV2_RESETSYS);
    return cmd_status(s, cdb, rep, sizeof rep, "APIV2_RESETSYS");
}

int sfi_stlink_drive_nrst(struct sfi_stlink *s, unsigned state)
{
    if (state > 2)
        return sfi_seterr(s->ctx, SFI_E_INVALID, "NRST state %u (0 low, 1 high, 2 pulse)",
                          state);
    uint8_t cdb[16], rep[2];
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_DRIVE_NRST);
    cdb[2] = (uint8_t)state;
    return cmd_status(s, cdb, rep, sizeof rep, "DRIVE_NRST");
}

int sfi_stlink_init_ap(struct sfi_stlink *s, unsigned ap)
{
    if (!(s->v.flags & SFI_STLINK_F_HAS_AP_INIT))
        return SFI_OK;
    if (ap > 255)
        return sfi_seterr(s->ctx, SFI_E_INVALID, "access port %u (0..255)", ap);
    uint8_t cdb[16], rep[2];
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_INIT_AP);
    cdb[2] = (uint8_t)ap;
    return cmd_status(s, cdb, rep, sizeof rep, "INIT_AP");
}

static int dap_check(struct sfi_stlink *s, unsigned port, unsigned addr)
{
    if (!(s->v.flags & SFI_STLINK_F_HAS_DAP_REG))
        return sfi_seterr(s->ctx, SFI_E_UNSUPPORTED,
                          "ST-LINK firmware J%u has no DAP register access (J24 or later)",
                          s->v.jtag);
    if (port > 0xFFFF || addr > 0xFFFF)
        return sfi_seterr(s->ctx, SFI_E_INVALID, "DAP port 0x%x / register 0x%x", port, addr);
    return SFI_OK;
}

int sfi_stlink_read_dap(struct sfi_stlink *s, unsigned port, unsigned addr, uint32_t *v)
{
    int rc = dap_check(s, port, addr);
    if (rc != SFI_OK)
        return rc;
    uint8_t cdb[16], rep[8];
    char op[40];
    snprintf(op, sizeof op, "READ_DAP_REG %s 0x%02x", port == SFI_STLINK_DP_PORT ? "DP" : "AP",
             addr);
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_READ_DAP_REG);
    sfi_put_le16(cdb + 2, port);
    sfi_put_le16(cdb + 4, addr);
    rc = cmd_status(s, cdb, rep, sizeof rep, op);
    if (rc == SFI_OK)
        *v = sfi_get_le32(rep + 4);
    return rc;
}

int sfi_stlink_write_dap(struct sfi_stlink *s, unsigned port, unsigned addr, uint32_t v)
{
    int rc = dap_check(s, port, addr);
    if (rc != SFI_OK)
        return rc;
    uint8_t cdb[16], rep[2];
    char op[40];
    snprintf(op, sizeof op, "WRITE_DAP_REG %s 0x%02x",
             port == SFI_STLINK_DP_PORT ? "DP" : "AP", addr);
    cdb2(cdb, SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_WRITE_DAP_REG);
    sfi_put_le16(cdb + 2, port);
    sfi_put_le16(cdb + 4, addr);
    sfi_put_le32(cdb + 6, v);
    return cmd_status(s, cdb, rep, sizeof rep, op);
}
