// Status and Result<T>: how every layer reports failure without aborting the process.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace osprey {

class Status {
 public:
  Status() = default;
  static Status ok_status() { return Status(); }
  static Status error(std::string msg) { return Status(std::move(msg), true); }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const std::string& message() const { return msg_; }
  // Prefix context ("loading model: ") onto an error on its way up.
  Status with_context(const std::string& ctx) const {
    return ok() ? *this : Status::error(ctx + ": " + msg_);
  }

 private:
  Status(std::string m, bool f) : msg_(std::move(m)), failed_(f) {}
  std::string msg_;
  bool failed_ = false;
};

template <class T>
class Result {
 public:
  Result(T v) : v_(std::move(v)) {}                 // NOLINT: implicit by design
  Result(Status s) : v_(std::move(s)) {}            // NOLINT: must be an error status
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  Status status() const { return ok() ? Status() : std::get<1>(v_); }
  const std::string& error() const { static const std::string none; return ok() ? none : std::get<1>(v_).message(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace osprey

#define OSPREY_TRY(expr)                       \
  do {                                         \
    ::osprey::Status _st = (expr);             \
    if (!_st.ok()) return _st;                 \
  } while (0)
