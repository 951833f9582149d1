#include "formats/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace osprey {

Result<MappedFile> map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::error(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return Status::error(path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  const size_t size = (size_t)st.st_size;
  if (size == 0) {
    ::close(fd);
    return Status::error(path + ": file is empty");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) return Status::error(path + ": mmap failed: " + std::strerror(map_errno));
  MappedFile m;
  m.map = map;
  m.data = static_cast<const uint8_t*>(map);
  m.size = size;
  return m;
}

void unmap_file(const MappedFile& m) {
  if (m.map) ::munmap(m.map, m.size);
}

}  // namespace osprey
