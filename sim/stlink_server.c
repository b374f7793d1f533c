/* stlink_server.c: the command decoder of a simulated ST-LINK/V3 (V3J7, API v3). Given one 16-byte
 * CDB and its OUT data it produces the exact IN reply a probe would send, dispatching memory,
 * register and reset operations to a target vtable. Memory commands report their outcome
 * through GETLASTRWSTATUS2, as the real probe does. Command bytes, reply sizes and memory
 * widths come from the protocol table the client uses (sfi/stlink_proto.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/bytes.h"
#include "sfi/stlink_proto.h"
#include "sfi/stlink_server.h"

#define DEFAULT_SERIAL "SFISIM0000000000000000001"
#define DEFAULT_PID 0x374Fu
#define DEFAULT_JTAG 7u
#define DEFAULT_KHZ 1000u

struct sfi_stlink_server {
    struct sfi_ctx *ctx;
    const struct sfi_stlink_target_ops *ops;
    void *ud;
    char serial[33];
    uint16_t pid;
    unsigned jtag;
    enum sfi_stlink_mode mode;
    unsigned last_rw;
    unsigned khz;
};

static const uint32_t com_freqs[] = {24000, 8000, 3300, 1000, 200, 50, 5};

int sfi_stlink_server_new(struct sfi_ctx *ctx, const struct sfi_stlink_server_cfg *cfg,
                          const struct sfi_stlink_target_ops *ops, void *ud,
                          struct sfi_stlink_server **out)
{
    if (ops == NULL)
        return sfi_seterr(ctx, SFI_E_INVALID, "simulated ST-LINK needs target operations");
    const char *serial = cfg != NULL && cfg->serial != NULL ? cfg->serial : DEFAULT_SERIAL;
    if (strlen(serial) == 0 || strlen(serial) > 32)
        return sfi_seterr(ctx, SFI_E_INVALID, "ST-LINK serial must have 1..32 characters");
    struct sfi_stlink_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "simulated ST-LINK");
    srv->ctx = ctx;
    srv->ops = ops;
    srv->ud = ud;
    snprintf(srv->serial, sizeof srv->serial, "%s", serial);
    srv->pid = cfg != NULL && cfg->pid != 0 ? cfg->pid : DEFAULT_PID;
    srv->jtag = cfg != NULL && cfg->jtag != 0 ? cfg->jtag : DEFAULT_JTAG;
    sfi_stlink_server_reset(srv);
    *out = srv;
    return SFI_OK;
}

void sfi_stlink_server_free(struct sfi_stlink_server *srv)
{
    free(srv);
}

const char *sfi_stlink_server_serial(const struct sfi_stlink_server *srv)
{
    return srv->serial;
}

uint16_t sfi_stlink_server_pid(const struct sfi_stlink_server *srv)
{
    return srv->pid;
}

void sfi_stlink_server_reset(struct sfi_stlink_server *srv)
{
    srv->mode = SFI_STLINK_MODE_MASS;
    srv->last_rw = SFI_STLINK_OK;
    srv->khz = DEFAULT_KHZ;
}

size_t sfi_stlink_server_out_len(const uint8_t cdb[16])
{
    return sfi_stlink_cmd_out_len(sfi_stlink_cmd_find(cdb), cdb);
}

/* Status-only reply of n bytes. */
static size_t put_status(uint8_t *reply, size_t n, unsigned status)
{
    memset(reply, 0, n);
    reply[0] = (uint8_t)status;
    return n;
}

static size_t put_status_value(uint8_t *reply, size_t n, unsigned status, uint32_t v)
{
    put_status(reply, n, status);
    sfi_put_le32(reply + 4, v);
    return n;
}

/* Memory commands: width 8/16/32, inc = address increments. */
static int mem_cmd(struct sfi_stlink_server *srv, const uint8_t cdb[16], int write,
                   unsigned width, int inc, const uint8_t *out, size_t out_len, uint8_t *reply,
                   size_t *rlen)
{
    uint32_t addr = sfi_get_le32(cdb + 2);
    size_t len = sfi_get_le16(cdb + 6);
    size_t max = width == 8 ? (srv->jtag >= 6 ? 512 : 64) : SFI_STLINK_BUF_SIZE;
    if (len > max)
        return sfi_seterr(srv->ctx, SFI_E_PROTOCOL, "memory command 0x%02x: length %zu > %zu",
                          cdb[1], len, max);
    if (write && out_len != len)
        return sfi_seterr(srv->ctx, SFI_E_PROTOCOL, "memory write: %zu data bytes for a "
                          "%zu-byte header", out_len, len);
    size_t wb = width / 8;
    size_t n_in = write ? 0 : (width == 8 && len == 1 ? 2 : len);
    memset(reply, 0, n_in);
    *rlen = n_in;
    if ((addr % wb) != 0 || (len % wb) != 0) {
        srv->last_rw = SFI_STLINK_SWD_AP_ERROR; /* the probe refuses unaligned transfers */
        return SFI_OK;
    }
    if (len == 0) {
        srv->last_rw = SFI_STLINK_OK;
        return SFI_OK;
    }
    unsigned st;
    if (inc) {
        if (write)
            st = srv->ops->write_mem ? srv->ops->write_mem(srv->ud, addr, out, len, width)
                                     : SFI_STLINK_FAULT;
        else
            st = srv->ops->read_mem ? srv->ops->read_mem(srv->ud, addr, reply, len, width)
                                    : SFI_STLINK_FAULT;
    } else {
        st = SFI_STLINK_OK;
        for (size_t i = 0; i < len && st == SFI_STLINK_OK; i += 4) {
            if (write)
                st = srv->ops->write_mem ? srv->ops->write_mem(srv->ud, addr, out + i, 4, 32)
                                         : SFI_STLINK_FAULT;
            else
                st = srv->ops->read_mem ? srv->ops->read_mem(srv->ud, addr, reply + i, 4, 32)
                                        : SFI_STLINK_FAULT;
        }
    }
    srv->last_rw = st & 0xFF;
    return SFI_OK;
}

static int debug_cmd(struct sfi_stlink_server *srv, const struct sfi_stlink_cmd *c,
                     const uint8_t cdb[16], const uint8_t *out, size_t out_len, uint8_t *reply,
                     size_t *rlen)
{
    const struct sfi_stlink_target_ops *o = srv->ops;
    const size_t n = c->in_len; /* the fixed reply size of the table */
    uint32_t v = 0;
    unsigned st;
    if (c->op == SFI_STLINK_OP_READ_MEM || c->op == SFI_STLINK_OP_WRITE_MEM)
        return mem_cmd(srv, cdb, c->op == SFI_STLINK_OP_WRITE_MEM, c->width, c->addr_inc, out,
                       out_len, reply, rlen);
    switch (cdb[1]) {
    case SFI_STLINK_DBG_EXIT:
        srv->mode = SFI_STLINK_MODE_MASS;
        *rlen = 0;
        return SFI_OK;
    case SFI_STLINK_DBG_APIV2_ENTER:
        if (cdb[2] != SFI_STLINK_ENTER_SWD_NO_RESET) {
            *rlen = put_status(reply, n, SFI_STLINK_FAULT); /* SWD only */
            return SFI_OK;
        }
        srv->mode = SFI_STLINK_MODE_DEBUG;
        *rlen = put_status(reply, n, SFI_STLINK_OK);
        return SFI_OK;
    case SFI_STLINK_DBG_APIV2_READ_IDCODES:
        st = o->idcode ? o->idcode(srv->ud, &v) : SFI_STLINK_SWD_DP_ERROR;
        *rlen = put_status_value(reply, n, st, v);
        return SFI_OK;
    case SFI_STLINK_DBG_APIV2_RESETSYS:
        st = o->reset_sys ? o->reset_sys(srv->ud) : SFI_STLINK_OK;
        *rlen = put_status(reply, n, st);
        return SFI_OK;
    case SFI_STLINK_DBG_APIV2_READREG:
        st = o->read_core_reg ? o->read_core_reg(srv->ud, cdb[2], &v) : SFI_STLINK_OK;
        *rlen = put_status_value(reply, n, st, v);
        return SFI_OK;
    case SFI_STLINK_DBG_APIV2_WRITEREG:
        st = o->write_core_reg ? o->write_core_reg(srv->ud, cdb[2], sfi_get_le32(cdb + 3))
                               : SFI_STLINK_OK;
        *rlen = put_status(reply, n, st);
        return SFI_OK;
    case SFI_STLINK_DBG_APIV2_WRITEDEBUGREG:
        st = o->write_dbg ? o->write_dbg(srv->ud, sfi_get_le32(cdb + 2), sfi_get_le32(cdb + 6))
                          : SFI_STLINK_OK;
        *rlen = put_status(reply, n, st);
        return SFI_OK;
    case SFI_STLINK_DBG_APIV2_READDEBUGREG:
        st = o->read_dbg ? o->read_dbg(srv->ud, sfi_get_le32(cdb + 2), &v) : SFI_STLINK_OK;
        *rlen = put_status_value(reply, n, st, v);
        return SFI_OK;
    case SFI_STLINK_DBG_APIV2_READALLREGS: { /* status word, then the registers */
        put_status(reply, n, SFI_STLINK_OK);
        for (unsigned i = 0; i < (n - 4) / 4; i++) {
            v = 0;
            st = o->read_core_reg ? o->read_core_reg(srv->ud, i, &v) : SFI_STLINK_OK;
            if (st != SFI_STLINK_OK)
                reply[0] = (uint8_t)st;
            sfi_put_le32(reply + 4 + 4 * i, v);
        }
        *rlen = n;
        return SFI_OK;
    }
    case SFI_STLINK_DBG_GETLASTRWSTATUS:
    case SFI_STLINK_DBG_GETLASTRWSTATUS2:
        *rlen = put_status(reply, n, srv->last_rw);
        return SFI_OK;
    case SFI_STLINK_DBG_DRIVE_NRST:
        st = cdb[2] > 2 ? SFI_STLINK_FAULT
             : o->drive_nrst ? o->drive_nrst(srv->ud, cdb[2])
                             : SFI_STLINK_OK;
        *rlen = put_status(reply, n, st);
        return SFI_OK;
    case SFI_STLINK_DBG_START_TRACE_RX:
    case SFI_STLINK_DBG_STOP_TRACE_RX:
    case SFI_STLINK_DBG_GET_TRACE_NB: /* no trace data */
    case SFI_STLINK_DBG_SWD_SET_FREQ:
    case SFI_STLINK_DBG_JTAG_SET_FREQ:
    case SFI_STLINK_DBG_INIT_AP:
    case SFI_STLINK_DBG_CLOSE_AP_DBG:
        *rlen = put_status(reply, n, SFI_STLINK_OK);
        if (cdb[1] == SFI_STLINK_DBG_GET_TRACE_NB)
            reply[0] = 0;
        return SFI_OK;
    case SFI_STLINK_DBG_READ_DAP_REG: {
        unsigned port = sfi_get_le16(cdb + 2), addr = sfi_get_le16(cdb + 4);
        if (o->read_dap)
            st = o->read_dap(srv->ud, port, addr, &v);
        else if (port == SFI_STLINK_DP_PORT && addr == 0)
            st = o->idcode ? o->idcode(srv->ud, &v) : SFI_STLINK_SWD_DP_ERROR;
        else
            st = SFI_STLINK_OK;
        *rlen = put_status_value(reply, n, st, v);
        return SFI_OK;
    }
    case SFI_STLINK_DBG_WRITE_DAP_REG:
        st = o->write_dap ? o->write_dap(srv->ud, sfi_get_le16(cdb + 2), sfi_get_le16(cdb + 4),
                                         sfi_get_le32(cdb + 6))
                          : SFI_STLINK_OK;
        *rlen = put_status(reply, n, st);
        return SFI_OK;
    case SFI_STLINK_DBG_APIV3_SET_COM_FREQ: { /* the closest supported speed <= requested */
        uint32_t want = sfi_get_le32(cdb + 4), got = com_freqs[sizeof com_freqs / 4 - 1];
        for (size_t i = 0; i < sizeof com_freqs / 4; i++) {
            if (com_freqs[i] <= want) {
                got = com_freqs[i];
                break;
            }
        }
        if (cdb[2] == 0)
            srv->khz = got;
        *rlen = put_status_value(reply, n, SFI_STLINK_OK, got);
        return SFI_OK;
    }
    case SFI_STLINK_DBG_APIV3_GET_COM_FREQ:
        put_status(reply, n, SFI_STLINK_OK);
        reply[8] = (uint8_t)(sizeof com_freqs / 4);
        for (size_t i = 0; i < sizeof com_freqs / 4; i++)
            sfi_put_le32(reply + 12 + 4 * i, com_freqs[i]);
        *rlen = n;
        return SFI_OK;
    default:
        return sfi_seterr(srv->ctx, SFI_E_UNSUPPORTED,
                          "simulated ST-LINK: %s (F2 %02X) is not simulated", c->name, cdb[1]);
    }
}

int sfi_stlink_server_handle(struct sfi_stlink_server *srv, const uint8_t cdb[16],
                             const uint8_t *out, size_t out_len, uint8_t *reply, size_t cap,
                             size_t *reply_len)
{
    if (cap < SFI_STLINK_BUF_SIZE + 16)
        return sfi_seterr(srv->ctx, SFI_E_INVALID, "reply buffer of %zu bytes too small", cap);
    const struct sfi_stlink_cmd *c = sfi_stlink_cmd_find(cdb);
    if (c == NULL) {
        char name[16];
        return sfi_seterr(srv->ctx, SFI_E_UNSUPPORTED, "simulated ST-LINK: unknown command %s",
                          sfi_stlink_cmd_label(cdb, name, sizeof name));
    }
    size_t need = sfi_stlink_cmd_out_len(c, cdb);
    if (out_len != need)
        return sfi_seterr(srv->ctx, SFI_E_PROTOCOL, "command %02X %02X: %zu OUT bytes, %zu "
                          "expected", cdb[0], cdb[1], out_len, need);
    size_t rlen = c->in_len;
    int rc = SFI_OK;
    unsigned mv = 0;
    switch (cdb[0]) {
    case SFI_STLINK_CMD_GET_VERSION: /* generation 3, x = y = 0: GET_VERSION_EX follows */
        sfi_put_be16(reply, 3u << 12);
        sfi_put_le16(reply + 2, SFI_STLINK_VID);
        sfi_put_le16(reply + 4, srv->pid);
        break;
    case SFI_STLINK_CMD_APIV3_GET_VERSION_EX:
        memset(reply, 0, rlen);
        reply[0] = 3;
        reply[2] = (uint8_t)srv->jtag;
        sfi_put_le16(reply + 8, SFI_STLINK_VID);
        sfi_put_le16(reply + 10, srv->pid);
        break;
    case SFI_STLINK_CMD_GET_CURRENT_MODE:
        reply[0] = (uint8_t)srv->mode;
        reply[1] = 0;
        break;
    case SFI_STLINK_CMD_DFU: /* the table knows DFU_EXIT only */
        srv->mode = SFI_STLINK_MODE_MASS;
        break;
    case SFI_STLINK_CMD_GET_TARGET_VOLTAGE: /* V = 2 * adc1 * 1.2 / adc0 */
        if (srv->ops->voltage == NULL || srv->ops->voltage(srv->ud, &mv) != SFI_STLINK_OK)
            mv = 3300;
        sfi_put_le32(reply, 2400);
        sfi_put_le32(reply + 4, mv);
        break;
    case SFI_STLINK_CMD_DEBUG:
        rc = debug_cmd(srv, c, cdb, out, out_len, reply, &rlen);
        break;
    default:
        return sfi_seterr(srv->ctx, SFI_E_UNSUPPORTED, "simulated ST-LINK: %s is not simulated",
                          c->name);
    }
    if (rc == SFI_OK)
        *reply_len = rlen;
    return rc;
}
