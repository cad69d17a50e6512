#include "custguard/api/types.hpp"

#include <cerrno>
#include <string_view>

namespace custguard::api {

namespace {

// The contents of a signature "(...)": what enter/open_container take for a struct.
std::string_view inside(const char* signature) {
    std::string_view s = signature;
    return s.substr(1, s.size() - 2);
}

int append_strings(sd_bus_message* m, const std::vector<std::string>& v) {
    int r = sd_bus_message_open_container(m, 'a', "s");
    for (const auto& s : v)
        if (r >= 0) r = sd_bus_message_append_basic(m, 's', s.c_str());
    return r < 0 ? r : sd_bus_message_close_container(m);
}

int read_string(sd_bus_message* m, std::string& out) {
    const char* s = nullptr;
    int r = sd_bus_message_read_basic(m, 's', &s);
    if (r > 0) out = s ? s : "";
    return r == 0 ? -EBADMSG : r;
}

int read_strings(sd_bus_message* m, std::vector<std::string>& out) {
    int r = sd_bus_message_enter_container(m, 'a', "s");
    if (r <= 0) return r == 0 ? -EBADMSG : r;
    out.clear();
    const char* s = nullptr;
    while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) out.emplace_back(s ? s : "");
    return r < 0 ? r : sd_bus_message_exit_container(m);
}

template <typename T>
int append_array(sd_bus_message* m, const char* element_signature, const std::vector<T>& v) {
    int r = sd_bus_message_open_container(m, 'a', element_signature);
    for (const auto& e : v)
        if (r >= 0) r = append(m, e);
    return r < 0 ? r : sd_bus_message_close_container(m);
}

// Reads an array of structs with `element_signature` into `out`.
template <typename T>
int read_array(sd_bus_message* m, const char* element_signature, std::vector<T>& out) {
    int r = sd_bus_message_enter_container(m, 'a', element_signature);
    if (r <= 0) return r == 0 ? -EBADMSG : r;
    std::vector<T> values;
    while ((r = sd_bus_message_at_end(m, 0)) == 0) {
        T v;
        if ((r = read(m, v)) < 0) return r;
        values.push_back(std::move(v));
    }
    if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0) return r;
    out = std::move(values);
    return 1;
}

}  // namespace

int append(sd_bus_message* m, const HeldJob& j) {
    int r = sd_bus_message_open_container(m, 'r', std::string(inside(held_job_signature)).c_str());
    if (r >= 0)
        r = sd_bus_message_append(m, "sssusust", j.job.c_str(), j.printer.c_str(), j.user.c_str(), j.uid,
                                  j.title.c_str(), j.pages, j.client.c_str(), j.held_at);
    if (r >= 0) r = sd_bus_message_open_container(m, 'a', "{su}");
    for (const auto& [name, n] : j.detector_hits)
        if (r >= 0) r = sd_bus_message_append(m, "{su}", name.c_str(), n);
    if (r >= 0) r = sd_bus_message_close_container(m);
    return r < 0 ? r : sd_bus_message_close_container(m);
}

int append(sd_bus_message* m, const std::vector<HeldJob>& jobs) { return append_array(m, held_job_signature, jobs); }

int append(sd_bus_message* m, const Zone& z) {
    int r = sd_bus_message_open_container(m, 'r', std::string(inside(zone_signature)).c_str());
    if (r >= 0) r = sd_bus_message_append_basic(m, 's', z.name.c_str());
    if (r >= 0) r = append_strings(m, z.paths);
    if (r >= 0) r = sd_bus_message_append(m, "ss", z.sensitivity.c_str(), z.on_violation.c_str());
    if (r >= 0) r = append_strings(m, z.allow_users);
    if (r >= 0) r = append_strings(m, z.allow_clients);
    return r < 0 ? r : sd_bus_message_close_container(m);
}

int append(sd_bus_message* m, const std::vector<Zone>& zones) { return append_array(m, zone_signature, zones); }

int append(sd_bus_message* m, const Grant& g) {
    int r = sd_bus_message_open_container(m, 'r', std::string(inside(grant_signature)).c_str());
    if (r >= 0)
        r = sd_bus_message_append(m, "ssstsst", g.zone.c_str(), g.user.c_str(), g.client.c_str(), g.expires_at,
                                  g.reason.c_str(), g.granted_by.c_str(), g.granted_at);
    return r < 0 ? r : sd_bus_message_close_container(m);
}

int append(sd_bus_message* m, const std::vector<Grant>& grants) { return append_array(m, grant_signature, grants); }

int append(sd_bus_message* m, const Counters& counters) {
    int r = sd_bus_message_open_container(m, 'a', "{st}");
    for (const auto& [name, value] : counters)
        if (r >= 0) r = sd_bus_message_append(m, "{st}", name.c_str(), value);
    return r < 0 ? r : sd_bus_message_close_container(m);
}

int read(sd_bus_message* m, HeldJob& out) {
    int r = sd_bus_message_enter_container(m, 'r', std::string(inside(held_job_signature)).c_str());
    if (r <= 0) return r == 0 ? -EBADMSG : r;
    HeldJob j;
    const char *job = nullptr, *printer = nullptr, *user = nullptr, *title = nullptr, *client = nullptr;
    r = sd_bus_message_read(m, "sssusust", &job, &printer, &user, &j.uid, &title, &j.pages, &client, &j.held_at);
    if (r < 0) return r;
    j.job = job, j.printer = printer, j.user = user, j.title = title, j.client = client;
    if ((r = sd_bus_message_enter_container(m, 'a', "{su}")) <= 0) return r == 0 ? -EBADMSG : r;
    const char* name = nullptr;
    std::uint32_t n = 0;
    while ((r = sd_bus_message_read(m, "{su}", &name, &n)) > 0) j.detector_hits[name] = n;
    if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0 || (r = sd_bus_message_exit_container(m)) < 0) return r;
    out = std::move(j);
    return 1;
}

int read(sd_bus_message* m, std::vector<HeldJob>& out) { return read_array(m, held_job_signature, out); }

int read(sd_bus_message* m, Zone& out) {
    int r = sd_bus_message_enter_container(m, 'r', std::string(inside(zone_signature)).c_str());
    if (r <= 0) return r == 0 ? -EBADMSG : r;
    Zone z;
    if ((r = read_string(m, z.name)) < 0 || (r = read_strings(m, z.paths)) < 0 ||
        (r = read_string(m, z.sensitivity)) < 0 || (r = read_string(m, z.on_violation)) < 0 ||
        (r = read_strings(m, z.allow_users)) < 0 || (r = read_strings(m, z.allow_clients)) < 0 ||
        (r = sd_bus_message_exit_container(m)) < 0)
        return r;
    out = std::move(z);
    return 1;
}

int read(sd_bus_message* m, std::vector<Zone>& out) { return read_array(m, zone_signature, out); }

int read(sd_bus_message* m, Grant& out) {
    int r = sd_bus_message_enter_container(m, 'r', std::string(inside(grant_signature)).c_str());
    if (r <= 0) return r == 0 ? -EBADMSG : r;
    Grant g;
    const char *zone = nullptr, *user = nullptr, *client = nullptr, *reason = nullptr, *by = nullptr;
    r = sd_bus_message_read(m, "ssstsst", &zone, &user, &client, &g.expires_at, &reason, &by, &g.granted_at);
    if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0) return r;
    g.zone = zone, g.user = user, g.client = client, g.reason = reason, g.granted_by = by;
    out = std::move(g);
    return 1;
}

int read(sd_bus_message* m, std::vector<Grant>& out) { return read_array(m, grant_signature, out); }

int read(sd_bus_message* m, Counters& out) {
    int r = sd_bus_message_enter_container(m, 'a', "{st}");
    if (r <= 0) return r == 0 ? -EBADMSG : r;
    Counters counters;
    const char* name = nullptr;
    std::uint64_t value = 0;
    while ((r = sd_bus_message_read(m, "{st}", &name, &value)) > 0) counters[name] = value;
    if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0) return r;
    out = std::move(counters);
    return 1;
}

}  // namespace custguard::api
