#include "common/files.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace scission {

namespace fs = std::filesystem;

std::string ReadFileBytes(const std::string& path) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw BadInput("{}: no such file", path);
  if (fs::is_directory(status)) throw BadInput("{}: is a directory, not a file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadInput("{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw BadInput("{}: read failed", path);
  return std::move(buffer).str();
}

void WriteFileAtomic(const std::string& path, std::string_view bytes) {
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw BadInput("{}: directory {} does not exist", path, dir.string());
  // A unique temporary name in the target's directory: concurrent writers of the same path (two
  // uploads of one model) never share a temporary file, and rename() stays atomic.
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw BadInput("{}: cannot write: {}", path, std::strerror(errno));
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw BadInput("{}: write failed: {}", path, std::strerror(saved));
    }
    written += static_cast<size_t>(n);
  }
  ::fchmod(fd, 0644);
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    throw BadInput("{}: cannot write: {}", path, std::strerror(saved));
  }
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw Internal("SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

namespace {
std::string HomeDir() {
  const char* home = std::getenv("HOME");
  return home && *home ? home : "/tmp";
}
}  // namespace

std::string ScissionHome() {
  const char* env = std::getenv("SCISSION_HOME");
  if (env && *env) return env;
  return HomeDir() + "/.cache/scission";
}

std::string DefaultDbPath() {
  const char* env = std::getenv("SCISSION_DB");
  if (env && *env) return env;
  return HomeDir() + "/.local/share/scission/scission.db";
}

}  // namespace scission
