/* SPDX-License-Identifier: MIT */
/**
 * @file common_fs.h
 * @brief Data directories and private files (identity keys, databases).
 */
#ifndef SWARMDVM_COMMON_FS_H
#define SWARMDVM_COMMON_FS_H

#include <stddef.h>

/**
 * @brief Resolve the data directory: @p override if non-NULL, else
 * $XDG_DATA_HOME/swarmdvm/<name>, else $HOME/.local/share/swarmdvm/<name>. The directory
 * is created (mode 0700, parents as needed).
 * @return 0, COMMON_EINVAL (no HOME), COMMON_ETOOBIG (path too long), COMMON_ESYS.
 */
int common_datadir(const char *override, const char *name, char *out, size_t cap);

/** @brief mkdir -p with @p mode for created directories. */
int common_mkdir_p(const char *path, unsigned mode);

/**
 * @brief Read a private file of at most @p cap bytes. Refuses (COMMON_EPERM) a file that is
 * group- or world-accessible, so a leaked key is noticed instead of used.
 * @return 0, COMMON_ENOTFOUND, COMMON_EPERM, COMMON_ETOOBIG, COMMON_EIO.
 */
int common_read_private(const char *path, void *buf, size_t cap, size_t *len);

/**
 * @brief Atomically write a private file (mode 0600): temp file, fsync, rename, fsync dir.
 * Fails with COMMON_EEXIST when @p exclusive and the file exists.
 */
int common_write_private(const char *path, const void *buf, size_t len, int exclusive);

/** @brief Join @p dir and @p file into @p out. @return 0 or COMMON_ETOOBIG. */
int common_path_join(char *out, size_t cap, const char *dir, const char *file);

#endif
