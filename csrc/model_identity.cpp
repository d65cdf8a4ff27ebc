// The model identity (docs/model_format.md): sha256 over the TorchScript archive's entries except the
// metadata and torch's serialization id (which hashes the metadata too), so that it names the module and not one save of it. The Python
// twin is rsoil_couple.modelfile.identity; a file written by export_model loads only when both agree.
#include <caffe2/serialize/inline_container.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "model_meta.hpp"

namespace rsc {

namespace {

// Entries left out of the identity: the metadata (it carries the identity) and the serialization id
// torch writes as a hash of all entries, the metadata included.
const char* const kExcluded[] = {"extra/rsoil_meta.json", ".data/serialization_id"};

struct Sha256 {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
  Sha256() {
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) throw MetaError("model identity: sha256 unavailable");
  }
  void update(const void* p, size_t n) {
    if (n > 0 && EVP_DigestUpdate(ctx.get(), p, n) != 1) throw MetaError("model identity: sha256 failed");
  }
  void update_u64(uint64_t x) {  // little-endian, as struct.pack("<Q")
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(x >> (8 * i));
    update(b, 8);
  }
  std::string hex() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx.get(), d, &n) != 1) throw MetaError("model identity: sha256 failed");
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
      out += digits[d[i] >> 4];
      out += digits[d[i] & 15];
    }
    return out;
  }
};

}  // namespace

std::string model_identity(const std::string& model_path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(model_path);
    std::vector<std::string> names = reader.getAllRecords();
    std::sort(names.begin(), names.end());
    if (std::adjacent_find(names.begin(), names.end()) != names.end())
      throw MetaError("model_id: the archive holds an entry twice (" + *std::adjacent_find(names.begin(), names.end()) +
                      "); its identity is ambiguous");
    Sha256 h;
    for (const std::string& name : names) {
      if (std::find(std::begin(kExcluded), std::end(kExcluded), name) != std::end(kExcluded)) continue;
      auto [data, size] = reader.getRecord(name);
      h.update_u64(name.size());
      h.update(name.data(), name.size());
      h.update_u64(size);
      h.update(data.get(), size);
    }
    return h.hex();
  } catch (const c10::Error& e) {
    throw MetaError("model_id: cannot read the archive to compute the model identity: " +
                    std::string(e.what_without_backtrace()).substr(0, 200));
  }
}

void check_model_identity(const std::string& model_path, const ModelMeta& meta) {
  if (meta.schema_version < 2) return;  // version 1 ids cannot be recomputed from the file (docs/model_format.md)
  const std::string id = model_identity(model_path).substr(0, 16);
  if (id != meta.model_id)
    throw MetaError("rsoil_meta.json: model_id: the metadata says " + meta.model_id +
                    " but the module in this file has identity " + id +
                    " (module swapped inside the file, or metadata copied from another model file)");
}

}  // namespace rsc
