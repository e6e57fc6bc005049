// RAII owners for C handles: one deleter per C type. The helper's libcurl
// and json-c handles are in helper/net_handles.hpp.
#pragma once

#include <memory>

#include <libconfig.h>

namespace ptv {

template <typename T, void (*Free)(T*)>
struct CDeleter {
  void operator()(T* p) const noexcept {
    if (p != nullptr) Free(p);
  }
};

inline void free_config(config_t* c) {
  config_destroy(c);
  delete c;
}

using ConfigHandle = std::unique_ptr<config_t, CDeleter<config_t, free_config>>;

}  // namespace ptv
