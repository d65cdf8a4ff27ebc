// A small JSON reader for rsoil_meta.json: RFC 8259 values into a tree, errors with byte offsets.
//
// libtorch ships no public JSON API, and the metadata is small and flat, so a ~200-line reader
// written here is simpler than vendoring a large header. Numbers are parsed as double.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace rsc {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  static Json parse(const std::string& text);  // throws std::runtime_error naming the offset

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  bool as_bool() const { return b_; }
  double as_number() const { return num_; }
  const std::string& as_string() const { return str_; }
  const std::vector<Json>& as_array() const { return arr_; }
  const std::map<std::string, Json>& as_object() const { return obj_; }

  bool has(const std::string& key) const { return is_object() && obj_.count(key) > 0; }
  const Json& at(const std::string& key) const { return obj_.at(key); }

  static const char* type_name(Type t);

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool b_ = false;
  double num_ = 0.0;
  std::string str_;
  std::vector<Json> arr_;
  std::map<std::string, Json> obj_;
};

}  // namespace rsc
