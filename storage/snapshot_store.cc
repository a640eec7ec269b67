#include "storage/snapshot_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "storage/file_util.h"

namespace raftlock::storage {
namespace {

constexpr char kMagic[8] = {'R', 'L', 'S', 'N', 'A', 'P', '\0', '\1'};
constexpr size_t kMagicLen = sizeof(kMagic);
constexpr char kSuffix[] = ".snap";
constexpr char kTmpSuffix[] = ".tmp";

std::string FileName(uint64_t index, uint64_t term) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "snap-%020" PRIu64 "-%020" PRIu64 ".snap", index, term);
  return buf;
}

bool ParseFileName(const std::string& name, uint64_t* index, uint64_t* term) {
  if (name.size() != 5 + 20 + 1 + 20 + 5) return false;
  if (name.compare(0, 5, "snap-") != 0 || name[25] != '-' || !name.ends_with(kSuffix)) {
    return false;
  }
  auto digits = [&](size_t pos, uint64_t* out) {
    uint64_t v = 0;
    for (size_t i = pos; i < pos + 20; ++i) {
      if (name[i] < '0' || name[i] > '9') return false;
      v = v * 10 + static_cast<uint64_t>(name[i] - '0');
    }
    *out = v;
    return true;
  };
  return digits(5, index) && digits(26, term);
}

void PutFixed32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint64_t GetFixed(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

absl::Status PreadAll(int fd, char* buf, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("pread", path, errno);
    }
    if (r == 0) return absl::DataLossError(absl::StrCat("snapshot file ", path, " is truncated"));
    done += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

struct Header {
  SnapshotMetadata metadata;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
};

// Parses the header and verifies the whole file's checksum and length.
absl::StatusOr<Header> VerifyFile(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("fstat", path, errno);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("snapshot file ", path, " is corrupt: ", why));
  };
  if (size < kMagicLen + 4 + 8 + 4) return corrupt("shorter than its fixed header");
  char fixed[kMagicLen + 4];
  if (auto s = PreadAll(fd, fixed, sizeof(fixed), 0, path); !s.ok()) return s;
  if (std::memcmp(fixed, kMagic, kMagicLen) != 0) return corrupt("bad magic");
  const uint64_t md_len = GetFixed(fixed + kMagicLen, 4);
  if (kMagicLen + 4 + md_len + 8 + 4 > size) return corrupt("metadata length past end of file");
  std::string md_bytes(md_len + 8, '\0');
  if (auto s = PreadAll(fd, md_bytes.data(), md_bytes.size(), kMagicLen + 4, path); !s.ok()) {
    return s;
  }
  Header h;
  h.data_size = GetFixed(md_bytes.data() + md_len, 8);
  h.data_offset = kMagicLen + 4 + md_len + 8;
  if (h.data_offset + h.data_size + 4 != size) return corrupt("length does not match header");
  // Stream the checksum over everything but the trailing crc.
  uint32_t crc = 0;
  std::string buf(1 << 20, '\0');
  for (uint64_t off = 0; off < size - 4;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - 4 - off));
    if (auto s = PreadAll(fd, buf.data(), n, off, path); !s.ok()) return s;
    crc = Crc32c(absl::string_view(buf.data(), n), crc);
    off += n;
  }
  char trailer[4];
  if (auto s = PreadAll(fd, trailer, 4, size - 4, path); !s.ok()) return s;
  if (static_cast<uint32_t>(GetFixed(trailer, 4)) != crc) return corrupt("checksum mismatch");
  if (!h.metadata.ParseFromArray(md_bytes.data(), static_cast<int>(md_len))) {
    return corrupt("unparseable metadata");
  }
  return h;
}

}  // namespace

SnapshotReader::SnapshotReader(int fd, std::string path, SnapshotMetadata md, uint64_t data_offset,
                               uint64_t data_size)
    : fd_(fd),
      path_(std::move(path)),
      metadata_(std::move(md)),
      data_offset_(data_offset),
      data_size_(data_size) {}

SnapshotReader::~SnapshotReader() { ::close(fd_); }

absl::StatusOr<std::string> SnapshotReader::ReadChunk(uint64_t offset, uint64_t max_bytes) const {
  if (offset >= data_size_) return std::string();
  const uint64_t n = std::min(max_bytes, data_size_ - offset);
  std::string out(n, '\0');
  if (auto s = PreadAll(fd_, out.data(), n, data_offset_ + offset, path_); !s.ok()) return s;
  return out;
}

SnapshotStore::SnapshotStore(std::string dir, Options options)
    : dir_(std::move(dir)), options_(options) {
  if (options_.retain == 0) options_.retain = 1;
}

absl::StatusOr<std::unique_ptr<SnapshotStore>> SnapshotStore::Open(const std::string& dir,
                                                                   const Options& options,
                                                                   bool create) {
  if (create) {
    if (auto s = EnsureDir(dir); !s.ok()) return s;
  }
  auto names = ListDir(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (name.ends_with(kTmpSuffix)) {
      if (auto s = RemovePath(dir + "/" + name); !s.ok()) return s;
    }
  }
  return std::unique_ptr<SnapshotStore>(new SnapshotStore(dir, options));
}

absl::Status SnapshotStore::Save(const Snapshot& snapshot) {
  const SnapshotMetadata& md = snapshot.metadata();
  const std::string path = dir_ + "/" + FileName(md.index(), md.term());
  // Unique per call: two threads may save at once (see the header).
  static std::atomic<uint64_t> saves{0};
  const std::string tmp = absl::StrCat(path, ".", saves.fetch_add(1), kTmpSuffix);
  std::string head(kMagic, kMagicLen);
  const std::string md_bytes = md.SerializeAsString();
  PutFixed32(&head, static_cast<uint32_t>(md_bytes.size()));
  head += md_bytes;
  PutFixed64(&head, snapshot.data().size());
  uint32_t crc = Crc32c(head);
  crc = Crc32c(snapshot.data(), crc);
  std::string trailer;
  PutFixed32(&trailer, crc);

  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("open", tmp, errno);
  absl::Status status = WriteAll(fd, head, tmp);
  if (status.ok()) status = WriteAll(fd, snapshot.data(), tmp);
  if (status.ok()) status = WriteAll(fd, trailer, tmp);
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoStatus("fsync", tmp, errno);
  if (::close(fd) != 0 && status.ok()) status = ErrnoStatus("close", tmp, errno);
  if (!status.ok()) return status;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename", tmp, errno);
  return SyncDir(dir_);
}

bool SnapshotStore::Contains(uint64_t index, uint64_t term) const {
  return PathExists(dir_ + "/" + FileName(index, term));
}

absl::StatusOr<std::vector<SnapshotFileInfo>> SnapshotStore::List() const {
  auto names = ListDir(dir_);
  if (!names.ok()) return names.status();
  std::vector<SnapshotFileInfo> out;
  for (auto it = names->rbegin(); it != names->rend(); ++it) {
    SnapshotFileInfo info;
    if (ParseFileName(*it, &info.index, &info.term)) {
      info.path = dir_ + "/" + *it;
      out.push_back(std::move(info));
    }
  }
  return out;
}

absl::StatusOr<SnapshotFileInfo> SnapshotStore::Find(uint64_t index) const {
  auto files = List();
  if (!files.ok()) return files.status();
  for (const SnapshotFileInfo& f : *files) {
    if (f.index == index) return f;
  }
  return absl::NotFoundError(absl::StrCat("no snapshot file for index ", index, " in ", dir_));
}

absl::StatusOr<std::unique_ptr<SnapshotReader>> SnapshotStore::OpenReader(uint64_t index) const {
  auto info = Find(index);
  if (!info.ok()) return info.status();
  int fd = ::open(info->path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", info->path, errno);
  auto header = VerifyFile(fd, info->path);
  if (!header.ok()) {
    ::close(fd);
    return header.status();
  }
  if (header->metadata.index() != info->index || header->metadata.term() != info->term) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat("snapshot file ", info->path,
                                            " is corrupt: metadata does not match its name"));
  }
  return std::unique_ptr<SnapshotReader>(new SnapshotReader(
      fd, info->path, std::move(header->metadata), header->data_offset, header->data_size));
}

absl::StatusOr<Snapshot> SnapshotStore::Load(uint64_t index) const {
  auto reader = OpenReader(index);
  if (!reader.ok()) return reader.status();
  auto data = (*reader)->ReadChunk(0, (*reader)->data_size());
  if (!data.ok()) return data.status();
  Snapshot snap;
  *snap.mutable_metadata() = (*reader)->metadata();
  snap.set_data(std::move(*data));
  return snap;
}

absl::Status SnapshotStore::Prune(uint64_t current_index) {
  auto files = List();
  if (!files.ok()) return files.status();
  size_t kept = 0;
  for (const SnapshotFileInfo& f : *files) {
    if (f.index <= current_index && kept < options_.retain) {
      ++kept;
      continue;
    }
    if (::unlink(f.path.c_str()) != 0 && errno != ENOENT)
      return ErrnoStatus("unlink", f.path, errno);
  }
  return absl::OkStatus();
}

}  // namespace raftlock::storage
