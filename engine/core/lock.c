/* lock.c: exclusive file locks across threads and processes (flock(2) on an open file
 * description of each holder), re-entrant for the thread that holds one. The licence guard of
 * a token is one: while it is held, one request at a time reads the counter, makes the
 * licence, stores the decrement and writes its journal rows. A lock dies with its process. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "sfi/sfi.h"

struct sfi_lock {
    struct sfi_lock *next; /* held locks of this process (registry) */
    char *path;
    int fd;
    int depth;             /* acquisitions by the owner thread */
    pthread_t owner;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sfi_lock *registry;

/* The lock this thread already holds on path, with its depth raised; NULL if none. */
static struct sfi_lock *reenter(const char *path)
{
    struct sfi_lock *hit = NULL;
    pthread_mutex_lock(&registry_mu);
    for (struct sfi_lock *l = registry; l; l = l->next) {
        if (pthread_equal(l->owner, pthread_self()) && strcmp(l->path, path) == 0) {
            l->depth++;
            hit = l;
            break;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    return hit;
}

int sfi_lock_acquire(struct sfi_ctx *ctx, const char *path, unsigned timeout_ms,
                     struct sfi_lock **out)
{
    struct sfi_lock *held = reenter(path);
    if (held) {
        *out = held;
        return SFI_OK;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    int writable = fd >= 0;
    if (fd < 0 && errno == EACCES)
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW); /* made by another user */
    if (fd < 0)
        return sfi_seterr(ctx, errno == EACCES || errno == EPERM ? SFI_E_ACCESS : SFI_E_IO,
                          "lock %s: %s", path, strerror(errno));
    uint64_t end = sfi_now_ms() + timeout_ms;
    unsigned pause = 1;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(fd);
            return sfi_seterr(ctx, SFI_E_IO, "lock %s: %s", path, strerror(e));
        }
        if (sfi_now_ms() >= end) {
            char who[32] = "";
            ssize_t n = pread(fd, who, sizeof who - 1, 0);
            who[n > 0 ? n : 0] = '\0';
            who[strcspn(who, "\n")] = '\0';
            close(fd);
            return sfi_seterr(ctx, SFI_E_BUSY, "lock %s still held after %u ms%s%s", path,
                              timeout_ms, who[0] ? " by pid " : "", who);
        }
        int rc = sfi_sleep_ms(ctx, pause);
        if (rc != SFI_OK) {
            close(fd);
            return rc;
        }
        if (pause < 20)
            pause *= 2;
    }
    struct sfi_lock *lk = calloc(1, sizeof *lk);
    char *p = strdup(path);
    if (!lk || !p) {
        free(lk);
        free(p);
        close(fd);
        return sfi_seterr(ctx, SFI_E_NOMEM, "sfi_lock_acquire");
    }
    if (writable) {
        char pid[24];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
            sfi_log(ctx, SFI_LOG_DEBUG, "lock %s: holder pid not recorded", path);
    }
    lk->path = p;
    lk->fd = fd;
    lk->depth = 1;
    lk->owner = pthread_self();
    pthread_mutex_lock(&registry_mu);
    lk->next = registry;
    registry = lk;
    pthread_mutex_unlock(&registry_mu);
    *out = lk;
    return SFI_OK;
}

void sfi_lock_release(struct sfi_lock *lk)
{
    if (!lk)
        return;
    pthread_mutex_lock(&registry_mu);
    int last = --lk->depth == 0;
    if (last) {
        for (struct sfi_lock **pp = &registry; *pp; pp = &(*pp)->next) {
            if (*pp == lk) {
                *pp = lk->next;
                break;
            }
        }
    }
    pthread_mutex_unlock(&registry_mu);
    if (!last)
        return;
    flock(lk->fd, LOCK_UN);
    close(lk->fd);
    free(lk->path);
    free(lk);
}
