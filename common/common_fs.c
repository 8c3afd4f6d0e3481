/* SPDX-License-Identifier: MIT */
#include "common/common_fs.h"
#include "common/common_err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int common_path_join(char *out, size_t cap, const char *dir, const char *file) {
    int n = snprintf(out, cap, "%s/%s", dir, file);
    return (n < 0 || (size_t)n >= cap) ? COMMON_ETOOBIG : 0;
}

int common_mkdir_p(const char *path, unsigned mode) {
    char tmp[4096];
    size_t len = strlen(path);
    if (len == 0) return COMMON_EINVAL;
    if (len >= sizeof tmp) return COMMON_ETOOBIG;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST) return COMMON_ESYS;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST) return COMMON_ESYS;
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) return COMMON_ESYS;
    return 0;
}

int common_datadir(const char *override, const char *name, char *out, size_t cap) {
    int n;
    if (override && *override) {
        n = snprintf(out, cap, "%s", override);
    } else {
        const char *xdg = getenv("XDG_DATA_HOME");
        const char *home = getenv("HOME");
        if (xdg && *xdg)
            n = snprintf(out, cap, "%s/swarmdvm/%s", xdg, name);
        else if (home && *home)
            n = snprintf(out, cap, "%s/.local/share/swarmdvm/%s", home, name);
        else
            return COMMON_EINVAL;
    }
    if (n < 0 || (size_t)n >= cap) return COMMON_ETOOBIG;
    return common_mkdir_p(out, 0700);
}

int common_read_private(const char *path, void *buf, size_t cap, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT ? COMMON_ENOTFOUND : COMMON_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return COMMON_EIO;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return COMMON_EPERM;
    }
    if ((size_t)st.st_size > cap) {
        close(fd);
        return COMMON_ETOOBIG;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, (char *)buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            close(fd);
            return COMMON_EIO;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;
}

int common_write_private(const char *path, const void *buf, size_t len, int exclusive) {
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) return COMMON_ETOOBIG;
    if (exclusive && access(path, F_OK) == 0) return COMMON_EEXIST;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return COMMON_EIO;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, (const char *)buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return COMMON_EIO;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return COMMON_EIO;
    }
    if (exclusive) {
        /* link() fails if the target exists: no race between two first runs. */
        if (link(tmp, path) != 0) {
            int e = errno;
            unlink(tmp);
            return e == EEXIST ? COMMON_EEXIST : COMMON_EIO;
        }
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        unlink(tmp);
        return COMMON_EIO;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}
