/* versions.c: the library versions `sfirun --version` reports (sfi/versions.h). */
#include <archive.h>
#include <libusb.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>

#include "sfi/sfi.h"
#include "sfi/versions.h"

#ifndef SFI_LIBP11_VERSION
#define SFI_LIBP11_VERSION "unknown"
#endif

void sfi_versions(struct sfi_versions *v)
{
    const struct libusb_version *uv = libusb_get_version();
    v->sfirun = sfi_version();
    v->openssl = OpenSSL_version(OPENSSL_VERSION);
    snprintf(v->libusb, sizeof v->libusb, "%u.%u.%u", (unsigned)uv->major, (unsigned)uv->minor,
             (unsigned)uv->micro);
    v->libp11 = SFI_LIBP11_VERSION;
    v->libarchive = archive_version_string();
    v->sqlite = sqlite3_libversion();
}
