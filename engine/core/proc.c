/* proc.c: runs an external program without a shell (posix_spawnp: argv as given, PATH
 * searched for a bare name, the environment passed through), stdin from /dev/null, with a time
 * limit: SIGTERM at the limit, SIGKILL 2 s later. Keeps the last bytes of its stdout and stderr
 * for messages. Cancellation (Ctrl-C) stops the child the same way. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sfi/sfi.h"

extern char **environ;

/* Appends n bytes to a tail buffer that keeps only its last cap - 1 bytes. */
static void tail_add(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (n >= cap - 1) {
        s += n - (cap - 1);
        n = cap - 1;
    }
    if (*len + n > cap - 1) {
        size_t drop = *len + n - (cap - 1);
        memmove(buf, buf + drop, *len - drop);
        *len -= drop;
    }
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

/* Spawns argv (PATH searched) with stdin from /dev/null, stdout to out_fd and stderr to
 * err_fd, SIGINT/SIGTERM/SIGPIPE at their defaults, in a process group of its own (a Ctrl-C on
 * the terminal reaches only us). Returns posix_spawnp's result (0 or an errno). */
static int spawn(const char *const argv[], char *const envp[], int out_fd, int err_fd,
                 pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    int src = posix_spawnp(pid, argv[0], &fa, &at, (char *const *)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return src;
}

int sfi_proc_run(struct sfi_ctx *ctx, const char *const argv[], unsigned timeout_ms,
                 struct sfi_proc_result *out)
{
    memset(out, 0, sizeof *out);
    int pout[2] = {-1, -1}, perr[2] = {-1, -1};
    if (pipe2(pout, O_CLOEXEC) != 0 || pipe2(perr, O_CLOEXEC) != 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (pout[i] >= 0)
                close(pout[i]);
            if (perr[i] >= 0)
                close(perr[i]);
        }
        return sfi_seterr(ctx, SFI_E_IO, "pipe: %s", strerror(e));
    }
    pid_t pid = 0;
    int src = spawn(argv, environ, pout[1], perr[1], &pid);
    close(pout[1]);
    close(perr[1]);
    if (src != 0) {
        close(pout[0]);
        close(perr[0]);
        return sfi_seterr(ctx, src == ENOENT ? SFI_E_NOT_FOUND : SFI_E_IO, "%s: %s", argv[0],
                          strerror(src));
    }
    uint64_t t0 = sfi_now_ms(), killed_at = 0;
    struct pollfd fds[2] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}};
    int open_fds = 2, status = 0, reaped = 0;
    while (!reaped) {
        uint64_t now = sfi_now_ms();
        if (!killed_at && (now - t0 >= timeout_ms || sfi_canceled(ctx))) {
            out->timed_out = !sfi_canceled(ctx);
            out->canceled = sfi_canceled(ctx);
            kill(-pid, SIGTERM);
            killed_at = now;
        } else if (killed_at && now - killed_at >= 2000) {
            kill(-pid, SIGKILL);
        }
        if (open_fds > 0) {
            int n = poll(fds, 2, 50);
            for (int i = 0; n > 0 && i < 2; i++) {
                if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                char buf[4096];
                ssize_t r = read(fds[i].fd, buf, sizeof buf);
                if (r > 0) {
                    if (i == 0)
                        tail_add(out->out, sizeof out->out, &out->out_len, buf, (size_t)r);
                    else
                        tail_add(out->err, sizeof out->err, &out->err_len, buf, (size_t)r);
                } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                    fds[i].fd = -1;
                    open_fds--;
                }
            }
        } else {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid && open_fds == 0)
            reaped = 1;
        else if (w == pid) {
            reaped = 1; /* drain what is left without blocking */
            for (int i = 0; i < 2; i++) {
                if (fds[i].fd < 0)
                    continue;
                char buf[4096];
                int fl = fcntl(fds[i].fd, F_GETFL);
                fcntl(fds[i].fd, F_SETFL, fl | O_NONBLOCK);
                ssize_t r;
                while ((r = read(fds[i].fd, buf, sizeof buf)) > 0) {
                    if (i == 0)
                        tail_add(out->out, sizeof out->out, &out->out_len, buf, (size_t)r);
                    else
                        tail_add(out->err, sizeof out->err, &out->err_len, buf, (size_t)r);
                }
            }
        }
    }
    close(pout[0]);
    close(perr[0]);
    if (WIFEXITED(status))
        out->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        out->signal = WTERMSIG(status);
    if (out->canceled)
        return sfi_seterr(ctx, SFI_E_CANCELED, "%s stopped: interrupted", argv[0]);
    return SFI_OK;
}

/* ---- children read line by line (sfi_child_*) ------------------------------------------------ */

#define LINE_MAX_BYTES 65536

struct sfi_child {
    pid_t pid;
    int fd;
    int reaped, status;
    int eof;
    size_t len;
    char buf[LINE_MAX_BYTES];
};

int sfi_child_spawn(struct sfi_ctx *ctx, const char *const argv[], const char *const env[],
                    struct sfi_child **out)
{
    struct sfi_child *c = calloc(1, sizeof *c);
    if (c == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "child");
    size_t ne = 0, nx = 0;
    while (environ[ne])
        ne++;
    while (env && env[nx])
        nx++;
    char **envp = calloc(ne + nx + 1, sizeof *envp);
    int p[2];
    if (envp == NULL || pipe2(p, O_CLOEXEC) != 0) {
        free(envp);
        free(c);
        return sfi_seterr(ctx, SFI_E_IO, "pipe: %s", strerror(errno));
    }
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) { /* the extra entries replace inherited ones */
        int dup = 0;
        for (size_t j = 0; j < nx && !dup; j++) {
            const char *eq = strchr(env[j], '=');
            size_t kl = eq ? (size_t)(eq - env[j]) : strlen(env[j]); /* the name */
            dup = strncmp(environ[i], env[j], kl) == 0 && environ[i][kl] == '=';
        }
        if (!dup)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < nx; j++)
        envp[k++] = (char *)env[j];
    envp[k] = NULL;
    int src = spawn(argv, envp, p[1], p[1], &c->pid);
    free(envp);
    close(p[1]);
    if (src != 0) {
        close(p[0]);
        free(c);
        return sfi_seterr(ctx, src == ENOENT ? SFI_E_NOT_FOUND : SFI_E_IO, "%s: %s", argv[0],
                          strerror(src));
    }
    c->fd = p[0];
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    *out = c;
    return SFI_OK;
}

int sfi_child_poll(struct sfi_child *const *kids, size_t n, unsigned timeout_ms)
{
    struct pollfd fds[256];
    size_t m = 0;
    int ready = 0;
    for (size_t i = 0; i < n && m < 256; i++) {
        if (kids[i] == NULL)
            continue;
        if (kids[i]->eof) {
            ready += kids[i]->reaped ? 0 : 1; /* output ended: waiting for the exit */
            continue;
        }
        fds[m].fd = kids[i]->fd;
        fds[m].events = POLLIN;
        fds[m].revents = 0;
        m++;
    }
    if (ready > 0)
        timeout_ms = timeout_ms < 20 ? timeout_ms : 20;
    if (m == 0) {
        struct timespec ts = {0, (long)timeout_ms * 1000000L};
        nanosleep(&ts, NULL);
        return ready;
    }
    int r = poll(fds, m, (int)timeout_ms);
    if (r > 0)
        ready += r;
    return ready;
}

int sfi_child_read(struct sfi_child *c, void (*line)(void *ud, const char *s, size_t n),
                   void *ud)
{
    while (!c->eof) {
        ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            break;
        if (r <= 0) {
            c->eof = 1;
            break;
        }
        c->len += (size_t)r;
        size_t start = 0;
        for (size_t i = 0; i < c->len; i++) {
            if (c->buf[i] == '\n') {
                line(ud, c->buf + start, i - start);
                start = i + 1;
            }
        }
        if (start == 0 && c->len == sizeof c->buf) { /* no newline in 64 KiB: cut */
            line(ud, c->buf, c->len);
            start = c->len;
        }
        memmove(c->buf, c->buf + start, c->len - start);
        c->len -= start;
    }
    if (c->eof && c->len > 0) {
        line(ud, c->buf, c->len);
        c->len = 0;
    }
    return c->eof;
}

void sfi_child_signal(struct sfi_child *c, int sig)
{
    if (c != NULL && !c->reaped)
        kill(-c->pid, sig);
}

int sfi_child_done(struct sfi_child *c, int *exit_code, int *sig)
{
    if (!c->reaped) {
        pid_t w = waitpid(c->pid, &c->status, WNOHANG);
        if (w != c->pid)
            return 0;
        c->reaped = 1;
    }
    *exit_code = WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1;
    *sig = WIFSIGNALED(c->status) ? WTERMSIG(c->status) : 0;
    return 1;
}

int sfi_child_pid(const struct sfi_child *c)
{
    return (int)c->pid;
}

void sfi_child_free(struct sfi_child *c)
{
    if (c == NULL)
        return;
    close(c->fd);
    free(c);
}
