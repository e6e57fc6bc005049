// RAII owners for the helper's libcurl and json-c handles.
#pragma once

#include <string.h>

#include <memory>

#include <curl/curl.h>
#include <json-c/json.h>

#include "util/handles.hpp"

namespace ptv {

// Header lists may carry the Authorization header: wiped before freeing.
inline void free_wiped_slist(curl_slist* list) {
  for (curl_slist* p = list; p != nullptr; p = p->next)
    if (p->data != nullptr) explicit_bzero(p->data, strlen(p->data));
  curl_slist_free_all(list);
}
inline void free_json(json_object* o) { json_object_put(o); }
inline void free_multi(CURLM* m) { curl_multi_cleanup(m); }

using CurlHandle = std::unique_ptr<CURL, CDeleter<CURL, curl_easy_cleanup>>;
using CurlMulti = std::unique_ptr<CURLM, CDeleter<CURLM, free_multi>>;
using CurlList =
    std::unique_ptr<curl_slist, CDeleter<curl_slist, curl_slist_free_all>>;
using CurlHeaders =
    std::unique_ptr<curl_slist, CDeleter<curl_slist, free_wiped_slist>>;
using JsonHandle = std::unique_ptr<json_object, CDeleter<json_object, free_json>>;
using JsonTokener =
    std::unique_ptr<json_tokener, CDeleter<json_tokener, json_tokener_free>>;

}  // namespace ptv
