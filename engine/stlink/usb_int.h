/* usb_int.h: internals of the ST-LINK USB transport shared with its tests: the bulk
 * transfer hook (libusb in production, a recorded-exchange double in tests) and the one
 * libusb error map. */
#ifndef SFI_STLINK_USB_INT_H
#define SFI_STLINK_USB_INT_H

#include "sfi/stlink.h"

/* Same contract as libusb_bulk_transfer: returns 0 or a LIBUSB_ERROR_* code. */
typedef int (*sfi_stlink_bulk_fn)(void *h, unsigned char ep, unsigned char *buf, int len,
                                  int *done, unsigned timeout_ms);
typedef void (*sfi_stlink_release_fn)(void *h);

/* A transport over a bulk function for probe pid; release(h) is called on close (may be
 * NULL). Errors: SFI_E_NOT_FOUND (pid not an ST-LINK), SFI_E_NOMEM. */
int sfi_stlink_usb_wrap(struct sfi_ctx *ctx, sfi_stlink_bulk_fn bulk, sfi_stlink_release_fn rel,
                        void *h, uint16_t pid, const char *serial,
                        struct sfi_stlink_transport **out);
/* OUT and IN endpoints of a probe model. */
void sfi_stlink_usb_endpoints(uint16_t pid, uint8_t *tx, uint8_t *rx);
/* Maps a LIBUSB_ERROR_* code (the name stays in the detail). */
int sfi_stlink_usb_maperr(struct sfi_ctx *ctx, int lrc, const char *op);

#define SFI_STLINK_UDEV_RULES "udev/70-sfirun-stlink.rules"

#endif
