#include "custguard/api/json.hpp"

namespace custguard::api {

common::Json to_json(const HeldJob& j) {
    common::Json hits = common::Json::object();
    for (const auto& [name, n] : j.detector_hits) hits.set(name, n);
    return common::Json::object()
        .set("job", j.job)
        .set("printer", j.printer)
        .set("user", j.user)
        .set("uid", j.uid)
        .set("title", j.title)
        .set("pages", j.pages)
        .set("client", j.client)
        .set("held_at", j.held_at)
        .set("detector_hits", std::move(hits));
}

}  // namespace custguard::api
