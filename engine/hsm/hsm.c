/* hsm.c: the licence token over a raw PKCS#11 function list (dlopen + C_GetFunctionList):
 * module/session/login, the token layout (docs/hsm.md), provisioning, the monotonic licence
 * counter (create-new-then-destroy-old data objects; the smallest value wins), the request
 * tags that make one counter value release at most one licence across stations, and licence
 * generation on the token (ECDH1_DERIVE -> AES_ECB_ENCRYPT_DATA -> AES_KEY_WRAP). */
#include <dlfcn.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/p11_int.h"
#include "license/lic_int.h"
#include "sfi/bytes.h"

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define L_KEY "sfi-fwkey"
#define L_FWID "sfi-fwid"
#define L_CTR "sfi-counter"
#define L_CA "sfi-ca"
#define L_STATE "sfi-state"
#define L_TAG "sfi-tag-" /* + the counter value a request spent: "sfi-tag-17" */
#define SPEND_TRIES 5     /* counter values one request may try before BUSY */
#define STATE_VALUE "sfirun-provisioned-v1"
#define APP "sfirun"
#define MAX_CTR_OBJS 16

#define MAX_SLOTS 8

/* One loaded module per path, shared by every open session of this process. PKCS#11 keeps
 * one login per token and application: C_Logout from any session logs out all of them, so
 * the open sessions are counted per slot and only the last one to close logs out. */
struct module {
    char path[512];
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    int refs;
    int initialized; /* we called C_Initialize successfully (so we finalize) */
    struct {
        CK_SLOT_ID id;
        int sessions;
    } slots[MAX_SLOTS];
};
/* modules[] (refs, slots, load/unload) is shared by the threads of a station. */
static pthread_mutex_t modules_mu = PTHREAD_MUTEX_INITIALIZER;
static struct module modules[4];

struct sfi_hsm {
    struct sfi_ctx *ctx;
    struct module *m;
    CK_SESSION_HANDLE s;
    int counted; /* this session is counted in m->slots[slot] */
    CK_SLOT_ID slot;
    char token[33];
    char serial[17];
    char lock_path[600];
    unsigned lock_ms;
};

/* The guard file: <dir>/sfirun-hsm-<sha256(module \n label), 24 hex>.lock, dir the first of
 * cfg->guard_dir, $SFIRUN_LOCK_DIR, /run/lock (shared by every user of the station),
 * cfg->lock_dir, /tmp. */
static int guard_path(struct sfi_ctx *ctx, const char *module, const char *token,
                      const char *own, const char *fallback, char *out, size_t cap)
{
    const char *env = getenv("SFIRUN_LOCK_DIR");
    const char *dir = own && *own ? own : env;
    if (!dir || !*dir)
        dir = access("/run/lock", W_OK | X_OK) == 0 ? "/run/lock" : fallback ? fallback : "/tmp";
    if ((dir == fallback || dir == own || dir == env) && mkdir(dir, 0700) != 0 &&
        errno != EEXIST)
        return sfi_seterr(ctx, SFI_E_IO, "lock directory %s: %s", dir, strerror(errno));
    char real[4096];
    const char *mod = realpath(module, real) ? real : module;
    unsigned char md[32];
    unsigned mdlen = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(m, mod, strlen(mod)) && EVP_DigestUpdate(m, "\n", 1) &&
             EVP_DigestUpdate(m, token, strlen(token)) && EVP_DigestFinal_ex(m, md, &mdlen);
    EVP_MD_CTX_free(m);
    if (!ok)
        return sfi_seterr(ctx, SFI_E_CRYPTO, "lock name: SHA-256 failed");
    char hex[25];
    sfi_hex_str(md, 12, hex);
    int n = snprintf(out, cap, "%s/sfirun-hsm-%s.lock", dir, hex);
    if (n < 0 || (size_t)n >= cap)
        return sfi_seterr(ctx, SFI_E_INVALID, "lock directory path too long");
    return SFI_OK;
}

int sfi_hsm_guard(struct sfi_hsm *h, struct sfi_lock **out)
{
    return sfi_lock_acquire(h->ctx, h->lock_path, h->lock_ms, out);
}

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

static int module_get_locked(struct sfi_ctx *ctx, const char *path, struct module **out)
{
    struct module *free_slot = NULL;
    for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++) {
        if (modules[i].refs > 0 && strcmp(modules[i].path, path) == 0) {
            modules[i].refs++;
            *out = &modules[i];
            return SFI_OK;
        }
        if (modules[i].refs == 0 && !free_slot)
            free_slot = &modules[i];
    }
    if (!free_slot)
        return sfi_seterr(ctx, SFI_E_BUSY, "too many PKCS#11 modules loaded");
    if (strlen(path) >= sizeof free_slot->path)
        return sfi_seterr(ctx, SFI_E_INVALID, "PKCS#11 module path too long");
    struct module *m = free_slot;
    if (!m->dl || strcmp(m->path, path) != 0) {
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl)
            return sfi_seterr(ctx, SFI_E_NOT_FOUND, "PKCS#11 module %s: %s", path, dlerror());
        CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
        CK_FUNCTION_LIST_PTR f = NULL;
        if (!gfl || gfl(&f) != CKR_OK || !f) {
            dlclose(dl);
            return sfi_seterr(ctx, SFI_E_NOT_FOUND, "%s: no C_GetFunctionList", path);
        }
        if (m->dl)
            dlclose(m->dl);
        m->dl = dl;
        m->f = f;
        strcpy(m->path, path);
    }
    CK_C_INITIALIZE_ARGS ia;
    memset(&ia, 0, sizeof ia);
    ia.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = m->f->C_Initialize(&ia);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return sfi_p11_err(ctx, rv, "C_Initialize");
    m->initialized = rv == CKR_OK;
    m->refs = 1;
    memset(m->slots, 0, sizeof m->slots);
    *out = m;
    return SFI_OK;
}

static int module_get(struct sfi_ctx *ctx, const char *path, struct module **out)
{
    pthread_mutex_lock(&modules_mu);
    int rc = module_get_locked(ctx, path, out);
    pthread_mutex_unlock(&modules_mu);
    return rc;
}

/* The module stays mapped for the process lifetime (a reload costs more than it saves). */
static void module_put(struct module *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&modules_mu);
    if (m->refs > 0 && --m->refs == 0 && m->initialized) {
        m->f->C_Finalize(NULL);
        m->initialized = 0;
    }
    pthread_mutex_unlock(&modules_mu);
}

/* Counts h's session on its slot (before C_Login, so that a session of the same token
 * closing meanwhile does not log this one out). Errors: SFI_E_BUSY (too many slots). */
static int session_count(struct sfi_hsm *h, CK_SLOT_ID slot)
{
    int rc = SFI_OK;
    pthread_mutex_lock(&modules_mu);
    int hit = -1, free_i = -1;
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (h->m->slots[i].sessions > 0 && h->m->slots[i].id == slot)
            hit = i;
        else if (h->m->slots[i].sessions == 0 && free_i < 0)
            free_i = i;
    }
    if (hit < 0 && free_i >= 0) {
        hit = free_i;
        h->m->slots[hit].id = slot;
    }
    if (hit < 0) {
        rc = sfi_seterr(h->ctx, SFI_E_BUSY, "too many PKCS#11 tokens open at once");
    } else {
        h->m->slots[hit].sessions++;
        h->counted = 1;
        h->slot = slot;
    }
    pthread_mutex_unlock(&modules_mu);
    return rc;
}

/* Closes h's session; the last session of its token logs out first. */
static void session_close(struct sfi_hsm *h)
{
    pthread_mutex_lock(&modules_mu);
    int last = 1;
    if (h->counted) {
        for (int i = 0; i < MAX_SLOTS; i++) {
            if (h->m->slots[i].sessions > 0 && h->m->slots[i].id == h->slot) {
                last = --h->m->slots[i].sessions == 0;
                break;
            }
        }
        h->counted = 0;
    }
    if (last)
        h->m->f->C_Logout(h->s);
    h->m->f->C_CloseSession(h->s);
    h->s = CK_INVALID_HANDLE;
    pthread_mutex_unlock(&modules_mu);
}

int sfi_p11_read_pin(struct sfi_ctx *ctx, const char *env, const char *file, char *pin, size_t cap)
{
    if (file) {
        FILE *fp = fopen(file, "r");
        if (!fp)
            return sfi_seterr(ctx, SFI_E_NOT_FOUND, "PIN file %s cannot be read", file);
        char *ok = fgets(pin, (int)cap, fp);
        fclose(fp);
        if (!ok)
            return sfi_seterr(ctx, SFI_E_NOT_FOUND, "PIN file %s is empty", file);
    } else {
        const char *name = env ? env : SFI_HSM_PIN_ENV;
        const char *v = getenv(name);
        if (!v || !*v)
            return sfi_seterr(ctx, SFI_E_NOT_FOUND, "PIN variable %s is not set", name);
        if (strlen(v) >= cap)
            return sfi_seterr(ctx, SFI_E_INVALID, "PIN in %s is too long", name);
        strcpy(pin, v);
    }
    pin[strcspn(pin, "\r\n")] = '\0';
    return SFI_OK;
}

/* True when the space-padded PKCS#11 field f (cap bytes) equals want ("" matches anything). */
static int field_is(const CK_UTF8CHAR *f, size_t cap, const char *want)
{
    size_t k = cap, wl = strlen(want);
    if (!wl)
        return 1;
    while (k > 0 && f[k - 1] == ' ')
        k--;
    return k == wl && memcmp(f, want, wl) == 0;
}

static int find_slot(struct sfi_hsm *h, const char *label, const struct sfi_hsm_uri *sel,
                     CK_SLOT_ID *out)
{
    CK_FUNCTION_LIST_PTR f = h->m->f;
    CK_ULONG n = 0;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK)
        return sfi_p11_err(h->ctx, rv, "C_GetSlotList");
    CK_SLOT_ID slots[64];
    if (n > 64)
        n = 64;
    rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
        return sfi_p11_err(h->ctx, rv, "C_GetSlotList");
    size_t ll = strlen(label);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        const char *tl = (const char *)ti.label;
        size_t k = 32;
        while (k > 0 && tl[k - 1] == ' ')
            k--;
        if (k == ll && memcmp(tl, label, ll) == 0 &&
            field_is(ti.serialNumber, sizeof ti.serialNumber, sel->serial) &&
            field_is(ti.manufacturerID, sizeof ti.manufacturerID, sel->manufacturer) &&
            field_is(ti.model, sizeof ti.model, sel->model)) {
            size_t sn = sizeof ti.serialNumber;
            while (sn > 0 && ti.serialNumber[sn - 1] == ' ')
                sn--;
            memcpy(h->serial, ti.serialNumber, sn);
            h->serial[sn] = '\0';
            *out = slots[i];
            return SFI_OK;
        }
    }
    return sfi_seterr(h->ctx, SFI_E_NOT_FOUND, "no PKCS#11 token labelled '%s'%s%s", label,
                      sel->serial[0] ? " with serial " : "", sel->serial);
}

int sfi_hsm_open(struct sfi_ctx *ctx, const struct sfi_hsm_cfg *cfg, struct sfi_hsm **out)
{
    struct sfi_hsm_uri u;
    memset(&u, 0, sizeof u);
    if (cfg->uri) {
        int rc = sfi_hsm_uri_parse(ctx, cfg->uri, &u);
        if (rc != SFI_OK)
            return rc;
        if (u.object[0] || u.id_len || u.type[0])
            return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: object=, id= and type= select a "
                                                "signing key; the licence token URI takes none");
    }
    const char *module = cfg->module ? cfg->module : u.module[0] ? u.module : NULL;
    if (!module)
        module = getenv("SFI_PKCS11_MODULE");
    if (!module || !*module)
        module = DEFAULT_MODULE;
    const char *token = cfg->token ? cfg->token : u.token[0] ? u.token : NULL;
    if (!token || !*token || strlen(token) > 32)
        return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11: a token label (1..32 chars) is required");
    const char *pin_file = cfg->pin_file ? cfg->pin_file : u.pin_file[0] ? u.pin_file : NULL;
    const char *pin_env = cfg->pin_env ? cfg->pin_env : u.pin_env[0] ? u.pin_env : NULL;

    struct sfi_hsm *h = calloc(1, sizeof *h);
    if (!h)
        return sfi_seterr(ctx, SFI_E_NOMEM, "sfi_hsm_open");
    h->ctx = ctx;
    strcpy(h->token, token);
    h->lock_ms = cfg->lock_timeout_ms ? cfg->lock_timeout_ms : 60000;
    int rc = guard_path(ctx, module, token, cfg->guard_dir, cfg->lock_dir, h->lock_path,
                        sizeof h->lock_path);
    if (rc != SFI_OK) {
        free(h);
        return rc;
    }
    struct sfi_lock *lk = NULL;
    rc = sfi_hsm_guard(h, &lk);
    if (rc != SFI_OK) {
        free(h);
        return rc;
    }
    rc = module_get(ctx, module, &h->m);
    if (rc != SFI_OK) {
        sfi_lock_release(lk);
        free(h);
        return rc;
    }
    CK_SLOT_ID slot = 0; /* set by find_slot on success (gcc -O2 warns otherwise) */
    char pin[129];
    CK_RV rv;
    rc = find_slot(h, token, &u, &slot);
    if (rc != SFI_OK)
        goto fail;
    rv = h->m->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h->s);
    if (rv != CKR_OK) {
        h->s = CK_INVALID_HANDLE;
        rc = sfi_p11_err(ctx, rv, "C_OpenSession");
        goto fail;
    }
    rc = session_count(h, slot);
    if (rc != SFI_OK)
        goto fail;
    rc = sfi_p11_read_pin(ctx, pin_env, pin_file, pin, sizeof pin);
    if (rc != SFI_OK)
        goto fail;
    rv = h->m->f->C_Login(h->s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    sfi_wipe(pin, sizeof pin);
    if (rv == CKR_USER_ALREADY_LOGGED_IN)
        rv = CKR_OK; /* the token keeps one login per application: ours already */
    rc = sfi_p11_err(ctx, rv, "C_Login");
    if (rc != SFI_OK)
        goto fail;
    sfi_lock_release(lk);
    sfi_log(ctx, SFI_LOG_DEBUG, "HSM: token '%s' open (%s)", token, module);
    *out = h;
    return SFI_OK;
fail:
    sfi_wipe(pin, sizeof pin);
    sfi_hsm_close(h);
    sfi_lock_release(lk);
    return rc;
}

void sfi_hsm_close(struct sfi_hsm *h)
{
    if (!h)
        return;
    if (h->m && h->s != CK_INVALID_HANDLE)
        session_close(h);
    module_put(h->m);
    free(h);
}

/* ---- objects ---------------------------------------------------------------------------- */

static int find(struct sfi_hsm *h, CK_OBJECT_CLASS cls, const char *label,
                CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *n)
{
    CK_FUNCTION_LIST_PTR f = h->m->f;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_RV rv = f->C_FindObjectsInit(h->s, t, 2);
    if (rv != CKR_OK)
        return sfi_p11_err(h->ctx, rv, "C_FindObjectsInit");
    rv = f->C_FindObjects(h->s, objs, max, n);
    f->C_FindObjectsFinal(h->s);
    return sfi_p11_err(h->ctx, rv, "C_FindObjects");
}

/* Reads CKA_VALUE into buf (cap); *len = its size. */
static int value(struct sfi_hsm *h, CK_OBJECT_HANDLE o, void *buf, size_t cap, size_t *len)
{
    CK_ATTRIBUTE a = {CKA_VALUE, buf, cap};
    CK_RV rv = h->m->f->C_GetAttributeValue(h->s, o, &a, 1);
    if (rv != CKR_OK)
        return sfi_p11_err(h->ctx, rv, "C_GetAttributeValue(CKA_VALUE)");
    *len = a.ulValueLen;
    return SFI_OK;
}

static int create_data(struct sfi_hsm *h, const char *label, const void *v, size_t n,
                       CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_APPLICATION, (void *)APP, strlen(APP)},
        {CKA_VALUE, (void *)v, n},
    };
    CK_OBJECT_HANDLE o;
    CK_RV rv = h->m->f->C_CreateObject(h->s, t, sizeof t / sizeof t[0], &o);
    if (rv != CKR_OK)
        return sfi_p11_err(h->ctx, rv, "C_CreateObject");
    if (out)
        *out = o;
    return SFI_OK;
}

static int read_data(struct sfi_hsm *h, const char *label, void *buf, size_t cap, size_t *len,
                     int *found)
{
    CK_OBJECT_HANDLE o[2];
    CK_ULONG n = 0;
    int rc = find(h, CKO_DATA, label, o, 2, &n);
    if (rc != SFI_OK)
        return rc;
    *found = n > 0;
    if (n == 0)
        return SFI_OK;
    if (n > 1)
        return sfi_seterr(h->ctx, SFI_E_FORMAT, "token holds %lu objects labelled '%s'",
                          (unsigned long)n, label);
    return value(h, o[0], buf, cap, len);
}

struct counter {
    CK_OBJECT_HANDLE objs[MAX_CTR_OBJS];
    uint32_t vals[MAX_CTR_OBJS];
    CK_ULONG n;
    uint32_t min;
};

/* One look at the counter objects: the readable ones (4 bytes) in c; *unsettled counts those
 * that could not be read or had another size (destroyed or still being written by another
 * station, or damaged). */
static int read_counter_once(struct sfi_hsm *h, struct counter *c, int *unsettled)
{
    int rc = find(h, CKO_DATA, L_CTR, c->objs, MAX_CTR_OBJS, &c->n);
    if (rc != SFI_OK)
        return rc;
    c->min = UINT32_MAX;
    CK_ULONG kept = 0;
    *unsettled = 0;
    for (CK_ULONG i = 0; i < c->n; i++) {
        uint8_t b[8];
        size_t len = 0;
        if (value(h, c->objs[i], b, sizeof b, &len) != SFI_OK || len != 4) {
            (*unsettled)++;
            continue;
        }
        c->objs[kept] = c->objs[i];
        c->vals[kept] = sfi_get_le32(b);
        if (c->vals[kept] < c->min)
            c->min = c->vals[kept];
        kept++;
    }
    c->n = kept;
    return SFI_OK;
}

/* The counter: the smallest readable value. Objects another station is destroying or writing
 * at that moment are skipped (a smaller value may hide among them: the value read is then
 * merely stale, which the request tags make harmless); with none readable, a few more looks. */
static int read_counter(struct sfi_hsm *h, struct counter *c)
{
    int unsettled = 0;
    for (unsigned pause = 1; pause <= 64; pause *= 2) {
        int rc = read_counter_once(h, c, &unsettled);
        if (rc != SFI_OK)
            return rc;
        if (c->n > 0) {
            sfi_clearerr(h->ctx);
            return SFI_OK;
        }
        rc = sfi_sleep_ms(h->ctx, pause);
        if (rc != SFI_OK)
            return rc;
    }
    if (unsettled)
        return sfi_seterr(h->ctx, SFI_E_FORMAT, "licence counter: %d object(s), none of 4 "
                                                "readable bytes", unsettled);
    return sfi_seterr(h->ctx, SFI_E_NOT_FOUND, "token has no licence counter (%s)", L_CTR);
}

/* Destroys every counter object but one holding the smallest value. */
static void tidy_counter(struct sfi_hsm *h, struct counter *c)
{
    int kept = 0;
    for (CK_ULONG i = 0; i < c->n; i++) {
        if (c->vals[i] == c->min && !kept) {
            kept = 1;
            continue;
        }
        CK_RV rv = h->m->f->C_DestroyObject(h->s, c->objs[i]);
        if (rv != CKR_OK)
            sfi_log(h->ctx, rv == CKR_OBJECT_HANDLE_INVALID ? SFI_LOG_DEBUG : SFI_LOG_WARN,
                    "HSM: stale counter object not destroyed (%s)", sfi_p11_rvname(rv));
    }
}

static int info_unguarded(struct sfi_hsm *h, struct sfi_hsm_info *out)
{
    struct sfi_hsm_info in;
    memset(&in, 0, sizeof in);
    strcpy(in.token, h->token);
    strcpy(in.serial, h->serial);
    strcpy(in.module, h->m->path);
    char st[64];
    size_t len = 0;
    int found = 0, any = 0;
    int rc = read_data(h, L_STATE, st, sizeof st - 1, &len, &found);
    if (rc != SFI_OK)
        return rc;
    int marked = found && len == strlen(STATE_VALUE) && memcmp(st, STATE_VALUE, len) == 0;
    any |= found;
    rc = read_data(h, L_FWID, in.fwid, SFI_HSM_FWID_MAX, &len, &found);
    if (rc != SFI_OK)
        return rc;
    if (found)
        in.fwid[len] = '\0';
    any |= found;
    rc = read_data(h, L_CA, in.ca_pub, 64, &len, &found);
    if (rc != SFI_OK)
        return rc;
    in.has_ca = found && len == 64;
    any |= found;
    struct counter c;
    rc = read_counter(h, &c);
    if (rc == SFI_OK) {
        in.counter = c.min;
        in.counter_objects = (int)c.n;
        any = 1;
    } else if (rc != SFI_E_NOT_FOUND) {
        return rc;
    }
    CK_OBJECT_HANDLE k;
    CK_ULONG nk = 0;
    rc = find(h, CKO_SECRET_KEY, L_KEY, &k, 1, &nk);
    if (rc != SFI_OK)
        return rc;
    any |= nk > 0;
    in.state = marked && nk == 1 && in.has_ca && in.counter_objects > 0 && in.fwid[0]
                   ? SFI_HSM_PROVISIONED
                   : any ? SFI_HSM_PARTIAL : SFI_HSM_EMPTY;
    sfi_clearerr(h->ctx);
    *out = in;
    return SFI_OK;
}

static int counter_unguarded(struct sfi_hsm *h, uint32_t *out)
{
    struct counter c;
    int rc = read_counter(h, &c);
    if (rc != SFI_OK)
        return rc;
    *out = c.min;
    return SFI_OK;
}

static int provision_unguarded(struct sfi_hsm *h, const struct sfi_hsm_prov *p)
{
    struct sfi_hsm_info in;
    int rc = info_unguarded(h, &in);
    if (rc != SFI_OK)
        return rc;
    if (in.state != SFI_HSM_EMPTY)
        return sfi_seterr(h->ctx, SFI_E_LOCKED, "token '%s' is %s: provisioning refused",
                          h->token, in.state == SFI_HSM_PROVISIONED ? "already provisioned"
                                                                    : "partly provisioned");
    size_t fl = p->fwid ? strlen(p->fwid) : 0;
    if (fl == 0 || fl > SFI_HSM_FWID_MAX)
        return sfi_seterr(h->ctx, SFI_E_INVALID, "firmware ID must be 1..%d characters",
                          SFI_HSM_FWID_MAX);
    for (size_t i = 0; i < fl; i++)
        if (p->fwid[i] < 0x20 || p->fwid[i] > 0x7e)
            return sfi_seterr(h->ctx, SFI_E_INVALID, "firmware ID must be printable ASCII");
    if (!p->key16 || !p->iv16 || !p->ca_pub64)
        return sfi_seterr(h->ctx, SFI_E_INVALID, "provisioning needs key, nonce and CA");
    if (p->iv16[12] | p->iv16[13] | p->iv16[14] | p->iv16[15])
        return sfi_seterr(h->ctx, SFI_E_INVALID, "nonce: the last 4 of the 16 IV bytes must be 0");
    EVP_PKEY *ca = sfi_lic_pubkey(p->ca_pub64);
    if (!ca)
        return sfi_seterr(h->ctx, SFI_E_INVALID, "CA public key is not on P-256");
    EVP_PKEY_free(ca);

    /* 1. the firmware key material: sensitive, extractable only by wrapping */
    uint8_t mat[32];
    memcpy(mat, p->iv16, 16);
    memcpy(mat + 16, p->key16, 16);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &yes, sizeof yes},
        {CKA_MODIFIABLE, &no, sizeof no},
        {CKA_ENCRYPT, &no, sizeof no},
        {CKA_DECRYPT, &no, sizeof no},
        {CKA_SIGN, &no, sizeof no},
        {CKA_VERIFY, &no, sizeof no},
        {CKA_DERIVE, &no, sizeof no},
        {CKA_WRAP, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},
        {CKA_LABEL, (void *)L_KEY, strlen(L_KEY)},
        {CKA_VALUE, mat, sizeof mat},
    };
    CK_OBJECT_HANDLE k;
    CK_RV rv = h->m->f->C_CreateObject(h->s, t, sizeof t / sizeof t[0], &k);
    sfi_wipe(mat, sizeof mat);
    if (rv != CKR_OK)
        return sfi_p11_err(h->ctx, rv, "C_CreateObject(firmware key)");
    /* 2. firmware ID, CA, counter; 3. the marker last: a crash leaves a PARTIAL token */
    uint8_t cb[4];
    sfi_put_le32(cb, p->max);
    if ((rc = create_data(h, L_FWID, p->fwid, fl, NULL)) != SFI_OK ||
        (rc = create_data(h, L_CA, p->ca_pub64, 64, NULL)) != SFI_OK ||
        (rc = create_data(h, L_CTR, cb, 4, NULL)) != SFI_OK ||
        (rc = create_data(h, L_STATE, STATE_VALUE, strlen(STATE_VALUE), NULL)) != SFI_OK)
        return rc;
    sfi_log(h->ctx, SFI_LOG_DEBUG, "HSM: token '%s' provisioned: firmware ID %s, %u licences",
            h->token, p->fwid, (unsigned)p->max);
    return SFI_OK;
}

/* ---- licence generation on the token ------------------------------------------------------ */

static const uint8_t p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/* Session EC key pair; pub_out = X||Y from CKA_EC_POINT (DER OCTET STRING around 04||X||Y). */
static int eph_keypair(struct sfi_hsm *h, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv,
                       uint8_t pub_out[64])
{
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {
        {CKA_TOKEN, &no, sizeof no},
        {CKA_EC_PARAMS, (void *)p256_oid, sizeof p256_oid},
    };
    CK_ATTRIBUTE vt[] = {
        {CKA_TOKEN, &no, sizeof no},         {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},   {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_DERIVE, &yes, sizeof yes},
    };
    CK_RV rv = h->m->f->C_GenerateKeyPair(h->s, &m, pt, 2, vt, 5, pub, priv);
    if (rv != CKR_OK)
        return sfi_p11_err(h->ctx, rv, "C_GenerateKeyPair(EC P-256)");
    uint8_t pt_der[80];
    CK_ATTRIBUTE a = {CKA_EC_POINT, pt_der, sizeof pt_der};
    rv = h->m->f->C_GetAttributeValue(h->s, *pub, &a, 1);
    if (rv != CKR_OK)
        return sfi_p11_err(h->ctx, rv, "C_GetAttributeValue(CKA_EC_POINT)");
    const uint8_t *q = pt_der;
    if (a.ulValueLen == 67 && pt_der[0] == 0x04 && pt_der[1] == 0x41)
        q = pt_der + 2;
    else if (a.ulValueLen != 65)
        return sfi_seterr(h->ctx, SFI_E_PROTOCOL, "token EC point has %lu bytes",
                          (unsigned long)a.ulValueLen);
    if (q[0] != 0x04)
        return sfi_seterr(h->ctx, SFI_E_PROTOCOL, "token EC point is not uncompressed");
    memcpy(pub_out, q + 1, 64);
    return SFI_OK;
}

/* zkey = ECDH(eph, chip) as a non-extractable AES-256 key; kek = AES-256-ECB(zkey, d). */
static int derive_kek(struct sfi_hsm *h, CK_OBJECT_HANDLE eph, const uint8_t chip_pub[64],
                      const uint8_t d[16], CK_OBJECT_HANDLE *zkey, CK_OBJECT_HANDLE *kek)
{
    uint8_t chip_pt[65];
    chip_pt[0] = 0x04;
    memcpy(chip_pt + 1, chip_pub, 64);
    CK_ECDH1_DERIVE_PARAMS ep = {CKD_NULL, 0, NULL, sizeof chip_pt, chip_pt};
    CK_MECHANISM m = {CKM_ECDH1_DERIVE, &ep, sizeof ep};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_ULONG zlen = 32, klen = 16;
    CK_ATTRIBUTE zt[] = {
        {CKA_CLASS, &cls, sizeof cls},         {CKA_KEY_TYPE, &aes, sizeof aes},
        {CKA_VALUE_LEN, &zlen, sizeof zlen},   {CKA_TOKEN, &no, sizeof no},
        {CKA_SENSITIVE, &yes, sizeof yes},     {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_DERIVE, &yes, sizeof yes},        {CKA_ENCRYPT, &no, sizeof no},
    };
    CK_RV rv = h->m->f->C_DeriveKey(h->s, &m, eph, zt, sizeof zt / sizeof zt[0], zkey);
    if (rv != CKR_OK)
        return sfi_p11_err(h->ctx, rv, "C_DeriveKey(CKM_ECDH1_DERIVE)");
    CK_KEY_DERIVATION_STRING_DATA sd = {(unsigned char *)d, 16};
    CK_MECHANISM m2 = {CKM_AES_ECB_ENCRYPT_DATA, &sd, sizeof sd};
    CK_ATTRIBUTE kt[] = {
        {CKA_CLASS, &cls, sizeof cls},         {CKA_KEY_TYPE, &aes, sizeof aes},
        {CKA_VALUE_LEN, &klen, sizeof klen},   {CKA_TOKEN, &no, sizeof no},
        {CKA_SENSITIVE, &yes, sizeof yes},     {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_WRAP, &yes, sizeof yes},          {CKA_DERIVE, &no, sizeof no},
    };
    rv = h->m->f->C_DeriveKey(h->s, &m2, *zkey, kt, sizeof kt / sizeof kt[0], kek);
    if (rv != CKR_OK)
        return sfi_p11_err(h->ctx, rv, "C_DeriveKey(CKM_AES_ECB_ENCRYPT_DATA)");
    return SFI_OK;
}

/* Creates counter value v (durable before the old ones go), then removes the others. */
static int counter_store(struct sfi_hsm *h, struct counter *old, uint32_t v)
{
    uint8_t b[4];
    sfi_put_le32(b, v);
    int rc = create_data(h, L_CTR, b, 4, NULL);
    if (rc != SFI_OK)
        return rc;
    for (CK_ULONG i = 0; i < old->n; i++) {
        CK_RV rv = h->m->f->C_DestroyObject(h->s, old->objs[i]);
        if (rv != CKR_OK) /* harmless: the smallest value is the truth (another station */
            sfi_log(h->ctx,  /* may have destroyed it already) */
                    rv == CKR_OBJECT_HANDLE_INVALID ? SFI_LOG_DEBUG : SFI_LOG_WARN,
                    "HSM: old counter object not destroyed (%s)", sfi_p11_rvname(rv));
    }
    return SFI_OK;
}

/* Reads every request tag on the token into *out (when out is not NULL; malloc'd, *nout of
 * them) and destroys those of values >= prune_from (UINT32_MAX: none). */
static int tags_scan(struct sfi_hsm *h, uint32_t prune_from, struct sfi_hsm_tag **out,
                     size_t *nout)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_APPLICATION, (void *)APP, strlen(APP)},
    };
    CK_FUNCTION_LIST_PTR f = h->m->f;
    CK_RV rv = f->C_FindObjectsInit(h->s, t, 2);
    if (rv != CKR_OK)
        return sfi_p11_err(h->ctx, rv, "C_FindObjectsInit");
    struct sfi_hsm_tag *v = NULL;
    CK_OBJECT_HANDLE *gone = NULL;
    size_t n = 0, cap = 0, ngone = 0, capgone = 0;
    int rc = SFI_OK;
    for (;;) {
        CK_OBJECT_HANDLE o[64];
        CK_ULONG got = 0;
        rv = f->C_FindObjects(h->s, o, 64, &got);
        if (rv != CKR_OK) {
            rc = sfi_p11_err(h->ctx, rv, "C_FindObjects");
            break;
        }
        if (got == 0)
            break;
        for (CK_ULONG i = 0; i < got && rc == SFI_OK; i++) {
            char label[40];
            uint8_t val[SFI_HSM_TAG_SIZE + 1];
            CK_ATTRIBUTE a[] = {{CKA_LABEL, label, sizeof label - 1}, {CKA_VALUE, val, sizeof val}};
            if (f->C_GetAttributeValue(h->s, o[i], a, 2) != CKR_OK)
                continue; /* not a tag (another label or size), or gone */
            label[a[0].ulValueLen] = '\0';
            const char *num = label + strlen(L_TAG);
            char *end = NULL;
            if (strncmp(label, L_TAG, strlen(L_TAG)) != 0 || a[1].ulValueLen != SFI_HSM_TAG_SIZE ||
                *num < '0' || *num > '9')
                continue;
            unsigned long value = strtoul(num, &end, 10);
            if (*end || value > UINT32_MAX)
                continue;
            int prune = value >= prune_from;
            if (!prune && !out)
                continue;
            size_t *len = prune ? &ngone : &n, *lim = prune ? &capgone : &cap;
            if (*len == *lim) {
                size_t nc = *lim ? 2 * *lim : 64;
                void *nv = prune ? realloc(gone, nc * sizeof *gone) : realloc(v, nc * sizeof *v);
                if (!nv) {
                    rc = sfi_seterr(h->ctx, SFI_E_NOMEM, "HSM tags");
                    break;
                }
                if (prune)
                    gone = nv;
                else
                    v = nv;
                *lim = nc;
            }
            if (prune) {
                gone[ngone++] = o[i];
            } else {
                v[n].value = (uint32_t)value;
                memcpy(v[n].tag, val, SFI_HSM_TAG_SIZE);
                n++;
            }
        }
        if (rc != SFI_OK)
            break;
    }
    f->C_FindObjectsFinal(h->s);
    for (size_t i = 0; rc == SFI_OK && i < ngone; i++)
        f->C_DestroyObject(h->s, gone[i]); /* another station may have pruned it already */
    free(gone);
    if (rc != SFI_OK || !out) {
        free(v);
        return rc;
    }
    *out = v;
    *nout = n;
    return SFI_OK;
}

/* The counter from a look at which every counter object was readable (a few looks at most):
 * not stale, unlike read_counter's. Errors: SFI_E_BUSY (the objects kept changing). */
static int read_counter_settled(struct sfi_hsm *h, uint32_t *min)
{
    struct counter c;
    int unsettled = 0;
    for (unsigned pause = 1; pause <= 64; pause *= 2) {
        int rc = read_counter_once(h, &c, &unsettled);
        if (rc != SFI_OK)
            return rc;
        if (!unsettled && c.n > 0) {
            *min = c.min;
            return SFI_OK;
        }
        rc = sfi_sleep_ms(h->ctx, pause);
        if (rc != SFI_OK)
            return rc;
    }
    return sfi_seterr(h->ctx, SFI_E_BUSY, "licence counter objects kept changing while read");
}

/* Writes this request's tag for counter value v (before the counter moves: a tag on the token
 * is the evidence that the request may have spent v). */
static int tag_write(struct sfi_hsm *h, uint32_t v, const uint8_t tag[SFI_HSM_TAG_SIZE])
{
    char label[32];
    snprintf(label, sizeof label, L_TAG "%u", (unsigned)v);
    return create_data(h, label, tag, SFI_HSM_TAG_SIZE, NULL);
}

/* *alone = 1 when the only tag for value v on the token is this request's. Two requests that
 * spent the same value each write their tag before they look: the later writer always sees
 * the earlier one, so at most one of them finds itself alone. */
static int tag_alone(struct sfi_hsm *h, uint32_t v, const uint8_t tag[SFI_HSM_TAG_SIZE],
                     int *alone)
{
    char label[32];
    snprintf(label, sizeof label, L_TAG "%u", (unsigned)v);
    CK_OBJECT_HANDLE o[4];
    CK_ULONG n = 0;
    *alone = 0;
    int rc = find(h, CKO_DATA, label, o, 4, &n);
    if (rc != SFI_OK || n != 1)
        return rc;
    uint8_t b[SFI_HSM_TAG_SIZE + 1];
    size_t len = 0;
    if (value(h, o[0], b, sizeof b, &len) != SFI_OK) { /* unreadable: not known to be ours */
        sfi_clearerr(h->ctx);
        return SFI_OK;
    }
    *alone = len == SFI_HSM_TAG_SIZE && memcmp(b, tag, SFI_HSM_TAG_SIZE) == 0;
    return SFI_OK;
}

static int license_unguarded(struct sfi_hsm *h, const uint8_t cert[SFI_CERT_SIZE],
                             const uint8_t *tag_in, uint8_t lic_out[SFI_LIC_SIZE],
                             uint32_t *counter_after, unsigned *withheld_out)
{
    uint8_t tag[SFI_HSM_TAG_SIZE];
    if (tag_in)
        memcpy(tag, tag_in, sizeof tag);
    else if (RAND_bytes(tag, sizeof tag) != 1)
        return sfi_seterr(h->ctx, SFI_E_CRYPTO, "request tag: no random bytes");
    struct sfi_hsm_info in;
    int rc = info_unguarded(h, &in);
    if (rc != SFI_OK)
        return rc;
    if (in.state != SFI_HSM_PROVISIONED)
        return sfi_seterr(h->ctx, SFI_E_NOT_FOUND, "token '%s' is not provisioned", h->token);
    /* 1. the certificate, before anything moves */
    rc = sfi_cert_verify(h->ctx, cert, in.ca_pub);
    if (rc != SFI_OK)
        return rc;
    struct counter c;
    rc = read_counter(h, &c);
    if (rc != SFI_OK)
        return rc;
    if (c.n > 1)
        tidy_counter(h, &c);
    if (c.min == 0)
        return sfi_seterr(h->ctx, SFI_E_COUNTER, "token '%s': no licences left", h->token);
    CK_OBJECT_HANDLE fw;
    CK_ULONG nk = 0;
    rc = find(h, CKO_SECRET_KEY, L_KEY, &fw, 1, &nk);
    if (rc != SFI_OK)
        return rc;
    /* 2. make the licence on the token */
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE zkey = CK_INVALID_HANDLE, kek = CK_INVALID_HANDLE;
    uint8_t lic[SFI_LIC_SIZE], eph[64], d[16];
    memset(lic, 0, sizeof lic);
    rc = eph_keypair(h, &pub, &priv, eph);
    if (rc != SFI_OK)
        goto out;
    sfi_license_header(0, 1, 0, eph, lic);
    sfi_license_kdf_input(lic, cert + 8, d);
    rc = derive_kek(h, priv, cert + 8, d, &zkey, &kek);
    if (rc != SFI_OK)
        goto out;
    CK_MECHANISM wm = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_ULONG wl = 40;
    CK_RV rv = h->m->f->C_WrapKey(h->s, &wm, kek, fw, lic + SFI_LIC_HEADER_SIZE, &wl);
    if (rv != CKR_OK || wl != 40) {
        rc = rv != CKR_OK ? sfi_p11_err(h->ctx, rv, "C_WrapKey(CKM_AES_KEY_WRAP)")
                          : sfi_seterr(h->ctx, SFI_E_PROTOCOL, "wrapped key is %lu bytes",
                                       (unsigned long)wl);
        goto out;
    }
    /* 3. spend a counter value durably, claimed by this request's tag; 4. release the licence
     * only if no other request (another station) spent the same value, else try the next */
    unsigned withheld = 0, jitter = (unsigned)tag[0] << 8 | tag[1];
    uint32_t v = 0;
    int alone = 0, failed = 0, last = SFI_OK;
    for (int attempt = 0; attempt < SPEND_TRIES && !alone; attempt++) {
        if (attempt > 0) { /* stations that collided draw apart before the next value */
            jitter = jitter * 1103515245u + 12345u;
            rc = sfi_sleep_ms(h->ctx, 1 + (jitter >> 16) % (4u << attempt));
            if (rc != SFI_OK)
                goto out;
        }
        rc = read_counter(h, &c); /* afresh: other stations may have spent meanwhile */
        if (rc != SFI_OK)
            goto out;
        if (c.min == 0) {
            rc = sfi_seterr(h->ctx, SFI_E_COUNTER, "token '%s': no licences left%s", h->token,
                            withheld ? " (the values this request spent were also spent by "
                                       "another station: licence withheld)"
                                     : "");
            goto out;
        }
        v = c.min - 1;
        if ((rc = tag_write(h, v, tag)) != SFI_OK || (rc = counter_store(h, &c, v)) != SFI_OK ||
            (rc = tag_alone(h, v, tag, &alone)) != SFI_OK) {
            /* a token error: if the tag went in, the value may be spent (the journal and
             * reconcile count it so); the licence is not released for it */
            failed++;
            last = rc;
            sfi_log(h->ctx, SFI_LOG_DEBUG, "HSM: spending counter value %u failed (%s)",
                    (unsigned)v, sfi_errdetail(h->ctx));
            continue;
        }
        uint32_t now = 0;
        if (alone && (read_counter_settled(h, &now) != SFI_OK ||
                      v >= now + SFI_HSM_TAG_WINDOW)) {
            /* this request read the counter so long ago that the tags of v may be pruned
             * already: it cannot know it is alone */
            alone = 0;
            sfi_clearerr(h->ctx);
        }
        if (!alone) {
            withheld++;
            sfi_log(h->ctx, SFI_LOG_WARN, "HSM: counter value %u was also spent by another "
                                          "station: licence withheld, spending the next value",
                    (unsigned)v);
        } else if (v % 4 == 0) {
            tags_scan(h, now + SFI_HSM_TAG_WINDOW, NULL, NULL); /* best effort */
            sfi_clearerr(h->ctx);
        }
    }
    if (!alone) {
        if (failed == SPEND_TRIES) { /* the token failed every time: its own error */
            rc = last;
            goto out;
        }
        rc = sfi_seterr(h->ctx, SFI_E_BUSY, "token '%s': %d tries to spend a counter value "
                                            "failed (%u also spent by other stations); licence "
                                            "withheld",
                        h->token, SPEND_TRIES, withheld);
        goto out;
    }
    memcpy(lic_out, lic, sizeof lic);
    if (counter_after)
        *counter_after = v;
    if (withheld_out)
        *withheld_out = withheld;
out:
    sfi_wipe(lic, sizeof lic);
    CK_OBJECT_HANDLE tmp[] = {kek, zkey, priv, pub};
    for (size_t i = 0; i < 4; i++)
        if (tmp[i] != CK_INVALID_HANDLE)
            h->m->f->C_DestroyObject(h->s, tmp[i]);
    return rc;
}

/* ---- the public operations, each under the token's guard -------------------------------- */

#define GUARDED(call)                                                                        \
    do {                                                                                     \
        struct sfi_lock *lk_ = NULL;                                                         \
        int rc_ = sfi_hsm_guard(h, &lk_);                                                    \
        if (rc_ == SFI_OK)                                                                   \
            rc_ = (call);                                                                    \
        sfi_lock_release(lk_);                                                               \
        return rc_;                                                                          \
    } while (0)

int sfi_hsm_info(struct sfi_hsm *h, struct sfi_hsm_info *out)
{
    GUARDED(info_unguarded(h, out));
}

int sfi_hsm_counter(struct sfi_hsm *h, uint32_t *out)
{
    GUARDED(counter_unguarded(h, out));
}

int sfi_hsm_provision(struct sfi_hsm *h, const struct sfi_hsm_prov *p)
{
    GUARDED(provision_unguarded(h, p));
}

int sfi_hsm_license(struct sfi_hsm *h, const uint8_t cert[SFI_CERT_SIZE],
                    const uint8_t *tag, uint8_t lic_out[SFI_LIC_SIZE], uint32_t *counter_after,
                    unsigned *withheld)
{
    GUARDED(license_unguarded(h, cert, tag, lic_out, counter_after, withheld));
}

int sfi_hsm_new_tag(uint8_t tag[SFI_HSM_TAG_SIZE])
{
    return RAND_bytes(tag, SFI_HSM_TAG_SIZE) == 1 ? SFI_OK : SFI_E_CRYPTO;
}

int sfi_hsm_tags(struct sfi_hsm *h, struct sfi_hsm_tag **out, size_t *n)
{
    GUARDED(tags_scan(h, UINT32_MAX, out, n));
}
