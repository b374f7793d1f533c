/* status.c: the one map from ST-LINK status bytes and stlink-server status words to sfirun
 * errors. Every code keeps its own name in the error detail so that a log shows exactly what
 * the probe said; the sfirun code tells the caller what recovery may help. */
#include "sfi/stlink.h"
#include "sfi/stlink_proto.h"

struct status_entry {
    unsigned status;
    const char *name;
    int rc;
    const char *meaning;
};

/* Ordered as the probe firmware numbers them. */
static const struct status_entry stlink_status[] = {
    {0x80, "OK", SFI_OK, "ok"},
    {0x81, "FAULT", SFI_E_TARGET, "target fault"},
    {0x09, "JTAG_GET_IDCODE_ERROR", SFI_E_NO_DEVICE, "no target answered the IDCODE read"},
    {0x0C, "JTAG_WRITE_ERROR", SFI_E_IO, "write to the target failed"},
    {0x0D, "JTAG_WRITE_VERIF_ERROR", SFI_OK, "write verify error (ignored)"},
    {0x10, "SWD_AP_WAIT", SFI_E_TIMEOUT, "access port kept answering WAIT"},
    {0x11, "SWD_AP_FAULT", SFI_E_TARGET, "bus fault on the access port"},
    {0x12, "SWD_AP_ERROR", SFI_E_TARGET, "access port error"},
    {0x13, "SWD_AP_PARITY_ERROR", SFI_E_PROTOCOL, "parity error on an access port transfer"},
    {0x14, "SWD_DP_WAIT", SFI_E_TIMEOUT, "debug port kept answering WAIT"},
    {0x15, "SWD_DP_FAULT", SFI_E_NO_DEVICE, "debug port fault (sticky error, reconnect)"},
    {0x16, "SWD_DP_ERROR", SFI_E_NO_DEVICE, "debug port did not answer"},
    {0x17, "SWD_DP_PARITY_ERROR", SFI_E_PROTOCOL, "parity error on a debug port transfer"},
    {0x18, "SWD_AP_WDATA_ERROR", SFI_E_PROTOCOL, "write data error on the access port"},
    {0x19, "SWD_AP_STICKY_ERROR", SFI_E_TARGET, "sticky error on the access port"},
    {0x1A, "SWD_AP_STICKYORUN_ERROR", SFI_E_TARGET, "sticky overrun on the access port"},
    {0x1D, "BAD_AP_ERROR", SFI_E_INVALID, "no such access port"},
};

static const struct status_entry *find_status(unsigned status)
{
    for (size_t i = 0; i < sizeof stlink_status / sizeof stlink_status[0]; i++)
        if (stlink_status[i].status == status)
            return &stlink_status[i];
    return NULL;
}

const char *sfi_stlink_status_name(unsigned status)
{
    const struct status_entry *e = find_status(status);
    return e != NULL ? e->name : NULL;
}

int sfi_stlink_status_is_wait(unsigned status)
{
    return status == SFI_STLINK_SWD_AP_WAIT || status == SFI_STLINK_SWD_DP_WAIT;
}

int sfi_stlink_status_err(struct sfi_ctx *ctx, unsigned status, const char *op)
{
    const struct status_entry *e = find_status(status);
    if (e == NULL)
        return sfi_seterr(ctx, SFI_E_PROTOCOL, "%s: unknown ST-LINK status 0x%02x", op, status);
    if (e->rc == SFI_OK)
        return SFI_OK;
    return sfi_seterr(ctx, e->rc, "%s: ST-LINK status %s (0x%02x): %s", op, e->name, status,
                      e->meaning);
}

static const struct status_entry server_status[] = {
    {0x0001, "OK", SFI_OK, "ok"},
    {0x1000, "MEMORY_ERROR", SFI_E_NOMEM, "the server ran out of memory"},
    {0x1001, "TIMEOUT_ERROR", SFI_E_TIMEOUT, "the probe did not answer the server in time"},
    {SFI_STLINK_SRV_BAD_PARAM, "BAD_PARAM_ERROR", SFI_E_PROTOCOL, "the server rejected a parameter"},
    {SFI_STLINK_SRV_OPEN_ERROR, "OPEN_ERROR", SFI_E_NO_DEVICE, "the server could not open the probe"},
    {0x1052, "TRUNCATED_DATA", SFI_E_PROTOCOL, "the server truncated the data"},
    {SFI_STLINK_SRV_CMD_NOT_AVAILABLE, "CMD_NOT_AVAILABLE", SFI_E_UNSUPPORTED, "the command is not available"},
    {0x2001, "TCP_ERROR", SFI_E_IO, "the server hit a TCP error"},
    {0x2002, "TCP_CANT_CONNECT", SFI_E_NO_DEVICE, "the server cannot reach the probe"},
    {0x2003, "TCP_CLOSE_ERROR", SFI_E_IO, "the server failed to close"},
    {0x2004, "TCP_BUSY", SFI_E_BUSY, "the probe is busy with another client"},
    {0x10000, "WIN32_ERROR", SFI_E_IO, "the server hit an operating-system error"},
};

static const struct status_entry *find_server_status(uint32_t status)
{
    for (size_t i = 0; i < sizeof server_status / sizeof server_status[0]; i++)
        if (server_status[i].status == status)
            return &server_status[i];
    return NULL;
}

const char *sfi_stlink_server_status_name(uint32_t status)
{
    const struct status_entry *e = find_server_status(status);
    return e != NULL ? e->name : NULL;
}

int sfi_stlink_server_status_err(struct sfi_ctx *ctx, uint32_t status, const char *op)
{
    const struct status_entry *e = find_server_status(status);
    if (e == NULL)
        return sfi_seterr(ctx, SFI_E_PROTOCOL, "%s: unknown stlink-server status 0x%x", op,
                          (unsigned)status);
    if (e->rc == SFI_OK)
        return SFI_OK;
    return sfi_seterr(ctx, e->rc, "%s: stlink-server status %s (0x%x): %s", op, e->name,
                      (unsigned)status, e->meaning);
}
