/* POSIX shared memory (shm_open), memfd, and mmap of any descriptor.
 * Validation lives in src/shm/shm.ts and src/shm/mmap.ts; size/fstat/ftruncate/close
 * go through Node's fs, which already wraps them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core_common.h"
#include "shm_mapping.h"

/* shmOpen(name, oflag, mode) -> fd */
static napi_value js_shm_open(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  char name[NAME_MAX + 2];
  int32_t oflag = 0;
  uint32_t mode = 0;
  if (!ipck_get_string(env, argv[0], name, sizeof name) ||
      !ipck_get_i32(env, argv[1], &oflag) || !ipck_get_u32(env, argv[2], &mode))
    return ipck_throw_errno(env, EINVAL, "shm_open");
  int fd = shm_open(name, oflag, (mode_t)mode);
  if (fd < 0) return ipck_throw_errno(env, errno, "shm_open");
  return ipck_i64(env, fd);
}

/* shmUnlink(name) */
static napi_value js_shm_unlink(napi_env env, napi_callback_info info) {
  return ipck_unlink_name(env, info, shm_unlink, "shm_unlink");
}

/* memfdCreate(name, flags) -> fd */
static napi_value js_memfd_create(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  char name[250];
  uint32_t flags = 0;
  if (!ipck_get_string(env, argv[0], name, sizeof name) ||
      !ipck_get_u32(env, argv[1], &flags))
    return ipck_throw_errno(env, EINVAL, "memfd_create");
  int fd = memfd_create(name, flags);
  if (fd < 0) return ipck_throw_errno(env, errno, "memfd_create");
  return ipck_i64(env, fd);
}

/* mappingCreate(fd, length, offset, writable, shared) -> { buffer, handle } */
static napi_value js_map_fd(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 5);
  int32_t fd = -1;
  int64_t length = 0, offset = 0;
  bool writable = false, shared = true;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i64(env, argv[1], &length) ||
      !ipck_get_i64(env, argv[2], &offset) || !ipck_get_bool(env, argv[3], &writable) ||
      !ipck_get_bool(env, argv[4], &shared) || length <= 0 || offset < 0)
    return ipck_throw_errno(env, EINVAL, "mmap");
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void *p = mmap(NULL, (size_t)length, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd,
                 (off_t)offset);
  if (p == MAP_FAILED) return ipck_throw_errno(env, errno, "mmap");
  return ipck_mapping_expose(env, p, (size_t)length);
}

/* fdAccessMode(fd) -> O_RDONLY | O_WRONLY | O_RDWR */
static napi_value js_fd_access_mode(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EBADF, "fcntl");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return ipck_throw_errno(env, errno, "fcntl");
  return ipck_i64(env, fl & O_ACCMODE);
}

/* memfdSeal(fd, seals): fcntl(F_ADD_SEALS). A memfd sealed with
 * F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL keeps its size for good, so a
 * process that maps it can never be killed by SIGBUS because another one
 * truncated it. */
static napi_value js_memfd_seal(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1, seals = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i32(env, argv[1], &seals))
    return ipck_throw_errno(env, EINVAL, "fcntl");
  if (fcntl(fd, F_ADD_SEALS, seals) != 0) return ipck_throw_errno(env, errno, "fcntl");
  return ipck_undefined(env);
}

/* fdInspect(fd) -> { mode, size, uid, gid, fsType, seals, access }: what a
 * descriptor received from another process really is, before it is used:
 * fstat (st_mode with the file type bits, size, owner), fstatfs (the
 * filesystem's magic number: tmpfs/shmem for a memfd, mqueue for a POSIX
 * queue), F_GET_SEALS (-1 where the file cannot be sealed) and the access
 * mode it was opened with. */
static napi_value js_fd_inspect(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EBADF, "fstat");
  struct stat st;
  if (fstat(fd, &st) != 0) return ipck_throw_errno(env, errno, "fstat");
  struct statfs sf;
  if (fstatfs(fd, &sf) != 0) return ipck_throw_errno(env, errno, "fstatfs");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return ipck_throw_errno(env, errno, "fcntl");
  int seals = fcntl(fd, F_GET_SEALS);
  napi_value out;
  IPCK_CALL(env, napi_create_object(env, &out));
  ipck_set_i64(env, out, "mode", st.st_mode);
  ipck_set_i64(env, out, "size", st.st_size);
  ipck_set_i64(env, out, "uid", st.st_uid);
  ipck_set_i64(env, out, "gid", st.st_gid);
  ipck_set_i64(env, out, "fsType", (int64_t)(uint32_t)sf.f_type);
  ipck_set_i64(env, out, "seals", seals < 0 ? -1 : seals);
  ipck_set_i64(env, out, "access", fl & O_ACCMODE);
  return out;
}

bool ipck_init_shm(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"MFD_CLOEXEC", MFD_CLOEXEC},
    {"MFD_ALLOW_SEALING", MFD_ALLOW_SEALING},
    {"PAGE_SIZE", sysconf(_SC_PAGESIZE)},
    {"F_SEAL_SEAL", F_SEAL_SEAL},
    {"F_SEAL_SHRINK", F_SEAL_SHRINK},
    {"F_SEAL_GROW", F_SEAL_GROW},
    {"F_SEAL_WRITE", F_SEAL_WRITE},
    {"F_SEAL_FUTURE_WRITE", F_SEAL_FUTURE_WRITE},
    /* statfs f_type of tmpfs/shmem (memfds live there) and of the mqueue filesystem. */
    {"TMPFS_MAGIC", 0x01021994},
    {"MQUEUE_MAGIC", 0x19800202},
  };
  static const ipck_function functions[] = {
    {"shmOpen", js_shm_open},
    {"shmUnlink", js_shm_unlink},
    {"memfdCreate", js_memfd_create},
    {"mappingCreate", js_map_fd},
    {"fdAccessMode", js_fd_access_mode},
    {"memfdSeal", js_memfd_seal},
    {"fdInspect", js_fd_inspect},
  };
  return ipck_export_constants(env, exports, "shmConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
