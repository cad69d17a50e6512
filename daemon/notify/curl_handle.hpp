// RAII owners for libcurl handles.
#pragma once

#include <curl/curl.h>

#include <memory>

namespace custguard::notify {

struct CurlEasyDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlSlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// curl_slist_append returns the new head (or null, leaving the old list intact).
class CurlSlist {
public:
    bool append(const char* s) {
        curl_slist* n = curl_slist_append(list_.get(), s);
        if (!n) return false;
        (void)list_.release();
        list_.reset(n);
        return true;
    }
    curl_slist* get() const { return list_.get(); }

private:
    std::unique_ptr<curl_slist, CurlSlistDeleter> list_;
};

}  // namespace custguard::notify
