// Model files by name (rsoil_couple.pretrained, the same rule): a bare name (non-empty, no '/', not
// ending in ".pt") that names no existing file is looked up as <dir>/<name>.pt in the folders of
// RSOIL_MODEL_PATH (':'-separated, in order), then in the installed models folder: the folder
// RSOIL_MODELDIR_FROM_LIB (CMake: the install's model folder relative to its library folder,
// "../pretrained") beside this library, i.e. <prefix>/rsoil_couple/pretrained in the wheel and in a
// CMake install alike, the folder the Python registry reads; the library in its build folder (not
// installed) reads the source tree's rsoil_couple/pretrained instead.
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "coupler.hpp"

#ifndef RSOIL_MODELDIR_FROM_LIB
#define RSOIL_MODELDIR_FROM_LIB "../pretrained"
#endif

namespace rsc {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSuffix = ".pt";

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

bool is_bare_model_name(const std::string& s) {
  const std::string suffix = kSuffix;
  const bool ends_pt = s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  return !s.empty() && s.find('/') == std::string::npos && !ends_pt;
}

std::string installed_model_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&installed_model_dir), &info) == 0 || info.dli_fname == nullptr) return "";
  const fs::path libdir = fs::path(info.dli_fname).parent_path();
#if defined(RSOIL_BUILD_LIBDIR) && defined(RSOIL_SOURCE_MODELDIR)
  // Not installed: the library in its build folder (a dev build, CTest) reads the source tree's folder,
  // the one the dev build's Python package reads.
  std::error_code ec;
  if (fs::equivalent(libdir, RSOIL_BUILD_LIBDIR, ec)) return RSOIL_SOURCE_MODELDIR;
#endif
  return (libdir / RSOIL_MODELDIR_FROM_LIB).lexically_normal().string();
}

std::vector<std::pair<std::string, std::string>> model_search_dirs() {
  std::vector<std::pair<std::string, std::string>> out;
  if (const char* env = std::getenv("RSOIL_MODEL_PATH")) {
    const std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      const size_t colon = std::min(s.find(':', start), s.size());
      if (colon > start) out.emplace_back(s.substr(start, colon - start), "RSOIL_MODEL_PATH");
      start = colon + 1;
    }
  }
  const std::string installed = installed_model_dir();
  if (!installed.empty()) out.emplace_back(installed, "installed models");
  return out;
}

std::string resolve_model_path(const std::string& name_or_path) {
  if (is_file(name_or_path) || !is_bare_model_name(name_or_path)) return name_or_path;
  const auto dirs = model_search_dirs();
  for (const auto& d : dirs) {
    const fs::path f = fs::path(d.first) / (name_or_path + kSuffix);
    if (is_file(f)) return f.string();
  }
  std::set<std::string> names;  // sorted, once each
  for (const auto& d : dirs) {
    std::error_code ec;
    for (fs::directory_iterator it(d.first, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string n = it->path().filename().string();
      if (n.size() > 3 && n.compare(n.size() - 3, 3, kSuffix) == 0 && is_file(it->path()))
        names.insert(n.substr(0, n.size() - 3));
    }
  }
  std::string msg = "model '" + name_or_path + "': no such file, and no pretrained model of that name: looked for " +
                    name_or_path + kSuffix + " in ";
  for (size_t i = 0; i < dirs.size(); ++i) msg += (i ? ", " : "") + dirs[i].first + " (" + dirs[i].second + ")";
  if (dirs.empty()) msg += "(no folder: RSOIL_MODEL_PATH unset and the library's own folder unknown)";
  msg += "; available names: ";
  if (names.empty()) msg += "(none)";
  size_t k = 0;
  for (const std::string& n : names) msg += (k++ ? ", " : "") + n;
  throw CoreError(RSC_E_FILE, msg);
}

}  // namespace rsc
