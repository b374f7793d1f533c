/* proto.c: the ST-LINK command table and the stlink-server request table (see
 * sfi/stlink_proto.h). Names follow ST's and OpenOCD's spelling; reply sizes are those the
 * probe sends (and OpenOCD 0.12 asks for). Data only, plus lookups. */
#include <stdio.h>

#include "sfi/bytes.h"
#include "sfi/stlink_proto.h"

/* Each entry names its command once: NAME gives both the byte (SFI_STLINK_..._NAME of
 * sfi/stlink_proto.h) and the label "NAME". */
#define TOP(nm, ph, in, a, r, o) {SFI_STLINK_CMD_##nm, 0, 0, #nm, ph, in, a, r, o, 0, 0}
#define DBG(nm, ph, in, a, r, o)                                                               \
    {SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_##nm, 1, #nm, ph, in, a, r, o, 0, 0}
#define MEM(nm, ph, o, w, inc)                                                                  \
    {SFI_STLINK_CMD_DEBUG, SFI_STLINK_DBG_##nm, 1, #nm, ph, 0, SFI_STLINK_ARGS_MEM,             \
     (ph) == SFI_STLINK_PHASE_IN ? SFI_STLINK_RES_DATA : SFI_STLINK_RES_NONE, o, w, inc}

#define NONE SFI_STLINK_PHASE_NONE
#define IN SFI_STLINK_PHASE_IN
#define OUT SFI_STLINK_PHASE_OUT

static const struct sfi_stlink_cmd cmds[] = {
    TOP(GET_VERSION, IN, 6, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_VERSION,
        SFI_STLINK_OP_VERSION),
    TOP(GET_CURRENT_MODE, IN, 2, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_MODE,
        SFI_STLINK_OP_MODE),
    TOP(GET_TARGET_VOLTAGE, IN, 8, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_VOLTAGE,
        SFI_STLINK_OP_VOLTAGE),
    TOP(APIV3_GET_VERSION_EX, IN, 12, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_VERSION_EX,
        SFI_STLINK_OP_VERSION),
    {SFI_STLINK_CMD_DFU, SFI_STLINK_DFU_EXIT, 1, "DFU_EXIT", NONE, 0, SFI_STLINK_ARGS_NONE,
     SFI_STLINK_RES_NONE, SFI_STLINK_OP_LEAVE, 0, 0},
    DBG(GETSTATUS, IN, 2, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_STATUS, SFI_STLINK_OP_CORE),
    DBG(FORCEDEBUG, IN, 2, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_CORE),
    MEM(READMEM_32BIT, IN, SFI_STLINK_OP_READ_MEM, 32, 1),
    MEM(WRITEMEM_32BIT, OUT, SFI_STLINK_OP_WRITE_MEM, 32, 1),
    DBG(RUNCORE, IN, 2, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_STATUS, SFI_STLINK_OP_CORE),
    DBG(STEPCORE, IN, 2, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_STATUS, SFI_STLINK_OP_CORE),
    MEM(READMEM_8BIT, IN, SFI_STLINK_OP_READ_MEM, 8, 1),
    MEM(WRITEMEM_8BIT, OUT, SFI_STLINK_OP_WRITE_MEM, 8, 1),
    DBG(EXIT, NONE, 0, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_NONE, SFI_STLINK_OP_LEAVE),
    DBG(APIV2_ENTER, IN, 2, SFI_STLINK_ARGS_BYTE, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_ENTER),
    DBG(APIV2_READ_IDCODES, IN, 12, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_STATUS_VALUE,
        SFI_STLINK_OP_IDCODE),
    DBG(APIV2_RESETSYS, IN, 2, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_RESET),
    DBG(APIV2_READREG, IN, 8, SFI_STLINK_ARGS_REGSEL, SFI_STLINK_RES_STATUS_VALUE,
        SFI_STLINK_OP_READ_REG),
    DBG(APIV2_WRITEREG, IN, 2, SFI_STLINK_ARGS_REGSEL_VAL, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_WRITE_REG),
    DBG(APIV2_WRITEDEBUGREG, IN, 2, SFI_STLINK_ARGS_ADDR_VAL, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_WRITE_DBG),
    DBG(APIV2_READDEBUGREG, IN, 8, SFI_STLINK_ARGS_ADDR, SFI_STLINK_RES_STATUS_VALUE,
        SFI_STLINK_OP_READ_DBG),
    DBG(APIV2_READALLREGS, IN, 88, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_REGS,
        SFI_STLINK_OP_READ_REGS),
    DBG(GETLASTRWSTATUS, IN, 2, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_RW_STATUS),
    DBG(DRIVE_NRST, IN, 2, SFI_STLINK_ARGS_BYTE, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_NRST),
    DBG(GETLASTRWSTATUS2, IN, 12, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_RW_STATUS),
    DBG(START_TRACE_RX, IN, 2, SFI_STLINK_ARGS_TRACE, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_TRACE),
    DBG(STOP_TRACE_RX, IN, 2, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_TRACE),
    DBG(GET_TRACE_NB, IN, 2, SFI_STLINK_ARGS_NONE, SFI_STLINK_RES_NONE,
        SFI_STLINK_OP_TRACE),
    DBG(SWD_SET_FREQ, IN, 2, SFI_STLINK_ARGS_U16, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_SPEED),
    DBG(JTAG_SET_FREQ, IN, 2, SFI_STLINK_ARGS_U16, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_SPEED),
    DBG(READ_DAP_REG, IN, 8, SFI_STLINK_ARGS_DAP, SFI_STLINK_RES_STATUS_VALUE,
        SFI_STLINK_OP_READ_DAP),
    DBG(WRITE_DAP_REG, IN, 2, SFI_STLINK_ARGS_DAP_VAL, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_WRITE_DAP),
    MEM(READMEM_16BIT, IN, SFI_STLINK_OP_READ_MEM, 16, 1),
    MEM(WRITEMEM_16BIT, OUT, SFI_STLINK_OP_WRITE_MEM, 16, 1),
    DBG(INIT_AP, IN, 2, SFI_STLINK_ARGS_BYTE, SFI_STLINK_RES_STATUS, SFI_STLINK_OP_AP),
    DBG(CLOSE_AP_DBG, IN, 2, SFI_STLINK_ARGS_BYTE, SFI_STLINK_RES_STATUS,
        SFI_STLINK_OP_AP),
    MEM(WRITEMEM_32BIT_NO_ADDR_INC, OUT, SFI_STLINK_OP_WRITE_MEM, 32, 0),
    DBG(RW_MISC_OUT, OUT, 0, SFI_STLINK_ARGS_ITEMS, SFI_STLINK_RES_NONE,
        SFI_STLINK_OP_MISC),
    DBG(RW_MISC_IN, IN, 0, SFI_STLINK_ARGS_ITEMS, SFI_STLINK_RES_NONE,
        SFI_STLINK_OP_MISC),
    MEM(READMEM_32BIT_NO_ADDR_INC, IN, SFI_STLINK_OP_READ_MEM, 32, 0),
    DBG(APIV3_SET_COM_FREQ, IN, 8, SFI_STLINK_ARGS_COM_FREQ, SFI_STLINK_RES_STATUS_VALUE,
        SFI_STLINK_OP_SPEED),
    DBG(APIV3_GET_COM_FREQ, IN, 52, SFI_STLINK_ARGS_BYTE, SFI_STLINK_RES_COM_FREQS,
        SFI_STLINK_OP_SPEEDS),
};

static const struct sfi_stlink_srv_req reqs[] = {
    {SFI_STLINK_SRV_REFRESH_DEVICE_LIST, "REFRESH_DEVICE_LIST", 2, 4, 1},
    {SFI_STLINK_SRV_GET_NB_DEV, "GET_NB_DEV", 1, 4, 0},
    {SFI_STLINK_SRV_GET_DEV_INFO, "GET_DEV_INFO", 8, 4, 1},
    {SFI_STLINK_SRV_OPEN_DEV, "OPEN_DEV", 8, 8, 1},
    {SFI_STLINK_SRV_CLOSE_DEV, "CLOSE_DEV", 8, 4, 1},
    {SFI_STLINK_SRV_SEND_USB_CMD, "SEND_USB_CMD", SFI_STLINK_SRV_HDR_LEN, 4, 1},
    {SFI_STLINK_SRV_GET_SERVER_VERSION, "GET_SERVER_VERSION", 4, 16, 0},
};

const struct sfi_stlink_cmd *sfi_stlink_cmd_table(size_t *n)
{
    *n = sizeof cmds / sizeof cmds[0];
    return cmds;
}

const struct sfi_stlink_cmd *sfi_stlink_cmd_find(const uint8_t cdb[16])
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const struct sfi_stlink_cmd *c = &cmds[i];
        if (c->cmd == cdb[0] && (!c->has_sub || c->sub == cdb[1]))
            return c;
    }
    return NULL;
}

size_t sfi_stlink_cmd_in_len(const struct sfi_stlink_cmd *c, const uint8_t cdb[16])
{
    if (c == NULL || c->phase != SFI_STLINK_PHASE_IN)
        return 0;
    if (c->args == SFI_STLINK_ARGS_MEM) {
        size_t n = sfi_get_le16(cdb + 6);
        return (c->width == 8 && n == 1) ? 2 : n;
    }
    if (c->args == SFI_STLINK_ARGS_ITEMS)
        return 8u * (sfi_get_le32(cdb + 2) & 0xFFFFu);
    return c->in_len;
}

size_t sfi_stlink_cmd_out_len(const struct sfi_stlink_cmd *c, const uint8_t cdb[16])
{
    if (c == NULL || c->phase != SFI_STLINK_PHASE_OUT)
        return 0;
    if (c->args == SFI_STLINK_ARGS_MEM)
        return sfi_get_le16(cdb + 6);
    if (c->args == SFI_STLINK_ARGS_ITEMS)
        return 12u * (sfi_get_le32(cdb + 2) & 0xFFFFu);
    return 0;
}

const char *sfi_stlink_cmd_label(const uint8_t cdb[16], char *buf, size_t n)
{
    const struct sfi_stlink_cmd *c = sfi_stlink_cmd_find(cdb);
    if (c != NULL)
        snprintf(buf, n, "%s", c->name);
    else if (cdb[0] == SFI_STLINK_CMD_DEBUG || cdb[0] == SFI_STLINK_CMD_DFU ||
             cdb[0] == SFI_STLINK_CMD_SWIM)
        snprintf(buf, n, "%02X %02X", cdb[0], cdb[1]);
    else
        snprintf(buf, n, "%02X", cdb[0]);
    return buf;
}

const struct sfi_stlink_srv_req *sfi_stlink_srv_table(size_t *n)
{
    *n = sizeof reqs / sizeof reqs[0];
    return reqs;
}

const struct sfi_stlink_srv_req *sfi_stlink_srv_find(unsigned code)
{
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
        if (reqs[i].code == code)
            return &reqs[i];
    return NULL;
}

size_t sfi_stlink_srv_req_size(const uint8_t *p, size_t have)
{
    if (have == 0)
        return 0;
    const struct sfi_stlink_srv_req *r = sfi_stlink_srv_find(p[0]);
    if (r == NULL)
        return (size_t)-1;
    if (have < r->req_len)
        return 0;
    if (r->code == SFI_STLINK_SRV_GET_DEV_INFO && sfi_get_le32(p + 4) > 1024)
        return (size_t)-1;
    if (r->code != SFI_STLINK_SRV_SEND_USB_CMD)
        return r->req_len;
    unsigned dir = p[24];
    uint32_t size = sfi_get_le32(p + 28);
    if ((dir != 0 && dir != 1 && dir != 3) || size > 0x10000u)
        return (size_t)-1;
    return SFI_STLINK_SRV_HDR_LEN + (dir == 0 ? size : 0);
}

size_t sfi_stlink_srv_rep_size(const uint8_t *req)
{
    const struct sfi_stlink_srv_req *r = sfi_stlink_srv_find(req[0]);
    if (r == NULL)
        return 0;
    if (r->code == SFI_STLINK_SRV_GET_DEV_INFO)
        return 4u + sfi_get_le32(req + 4);
    if (r->code == SFI_STLINK_SRV_SEND_USB_CMD && req[24] != 0)
        return 4u + sfi_get_le32(req + 28);
    return r->rep_len;
}
