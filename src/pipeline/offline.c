/* offline.c - the offline file: the last good bundle's JSON text, written
 * atomically (temporary file, fsync, rename, fsync of the folder) so that a crash leaves the old
 * file or the new one, never a mix; and read back at start when the API cannot be reached.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "offline.h"

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void sync_folder(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

dc_rc dc_offline_write(const char *path, const char *json, size_t len, char *err, size_t errlen)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp) {
        dc_set_err(err, errlen, "%s: path too long", path);
        return DC_EINVAL;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        dc_set_err(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return DC_EIO;
    }
    if (write_all(fd, json, len) != 0 || fsync(fd) != 0) {
        dc_set_err(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return DC_EIO;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        dc_set_err(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return DC_EIO;
    }
    sync_folder(path);
    return DC_OK;
}

dc_rc dc_offline_read(const char *path, size_t max, char **json, size_t *len, char *err,
                      size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        dc_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return DC_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        dc_set_err(err, errlen, "%s: not a regular file", path);
        close(fd);
        return DC_EIO;
    }
    if ((size_t)st.st_size > max) {
        dc_set_err(err, errlen, "%s: %lld bytes, over the limit of %zu", path,
                   (long long)st.st_size, max);
        close(fd);
        return DC_ELIMIT;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return DC_ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        dc_set_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
        free(buf);
        return DC_EIO;
    }
    buf[got] = '\0';
    *json = buf;
    *len = got;
    return DC_OK;
}
