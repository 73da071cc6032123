// Small file and hashing helpers shared by all layers.
#pragma once

#include <string>
#include <string_view>

namespace scission {

// Reads a whole regular file; BadInput "<path>: <why>" for a missing path or a directory.
std::string ReadFileBytes(const std::string& path);
// Writes atomically (unique temporary file in the same directory + rename) so a crash never
// leaves half a file and concurrent writers of one path do not collide. The directory must exist
// (BadInput otherwise): nothing is created that the caller did not name.
void WriteFileAtomic(const std::string& path, std::string_view bytes);
std::string Sha256Hex(std::string_view bytes);
// $SCISSION_HOME, else ~/.cache/scission.
std::string ScissionHome();
// $SCISSION_DB, else ~/.local/share/scission/scission.db.
std::string DefaultDbPath();

}  // namespace scission
