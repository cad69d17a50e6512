#include "custguard/events/record.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace custguard::events {

std::string_view to_string(Kind kind) {
    switch (kind) {
    case Kind::access_allowed: return "access_allowed";
    case Kind::access_audited: return "access_audited";
    case Kind::access_denied: return "access_denied";
    case Kind::zone_integrity: return "zone_integrity";
    case Kind::print: return "print";
    case Kind::admin_change: return "admin_change";
    case Kind::policy_reload: return "policy_reload";
    case Kind::lost: return "lost";
    case Kind::sensor_mismatch: return "sensor_mismatch";
    case Kind::bulk_read: return "bulk_read";
    case Kind::repeated: return "repeated";
    case Kind::customer_data_found: return "customer_data_found";
    }
    return "unknown";
}

std::optional<Kind> kind_from_message_id(std::string_view message_id) {
    for (const auto& k : kind_table)
        if (k.message_id == message_id) return k.kind;
    return std::nullopt;
}

std::string_view to_string(PrintDecision decision) {
    switch (decision) {
    case PrintDecision::allow: return "allow";
    case PrintDecision::audit: return "audit";
    case PrintDecision::deny: return "deny";
    case PrintDecision::hold: return "hold";
    }
    return "unknown";
}

bool valid_field_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name[0] == '_' || (name[0] >= '0' && name[0] <= '9'))
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
}

Record& Record::set(std::string_view name, std::string_view value) {
    auto it = std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.name == name; });
    if (value.empty()) {
        if (it != fields.end()) fields.erase(it);
        return *this;
    }
    if (it != fields.end())
        it->value.assign(value);
    else
        fields.push_back({std::string(name), std::string(value)});
    return *this;
}

Record& Record::set(std::string_view name, std::uint64_t value) { return set(name, std::to_string(value)); }

Record& Record::add(std::string_view name, std::string_view value) {
    if (!value.empty()) fields.push_back({std::string(name), std::string(value)});
    return *this;
}

Record& Record::add(std::string_view name, std::uint64_t value) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    return add(name, std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

const std::string* Record::get(std::string_view name) const {
    for (const auto& f : fields)
        if (f.name == name) return &f.value;
    return nullptr;
}

namespace {
Record base(Kind kind) {
    Record r;
    r.kind = kind;
    r.set(field::event, info(kind).name);
    return r;
}
}  // namespace

Record make_print_record(const PrintJob& job, PrintDecision decision, std::string_view reason) {
    Record r = base(Kind::print);
    r.set(field::decision, to_string(decision));
    r.set(field::printer, job.printer);
    r.set(field::job, job.job);
    r.set(field::user, job.user);
    if (job.uid != 0xffffffffu) r.set(field::uid, job.uid);
    r.set(field::title, job.title);
    if (job.pages) r.set(field::pages, job.pages);
    r.set(field::client, job.client);
    // "credit_card:3,email:1" — names and counts only, sorted by name for stable output.
    std::string detectors, hits_text;
    std::uint64_t hits = 0;
    for (const auto& [name, count] : job.detector_hits) {
        if (count == 0) continue;
        if (!detectors.empty()) detectors += ',';
        detectors += fmt::format("{}:{}", name, count);
        hits += count;
    }
    r.set(field::detectors, detectors);
    if (!job.detector_hits.empty()) r.set(field::hits, hits);
    r.message = fmt::format("print job {} on {} by {}: {}{}{}", job.job.empty() ? "?" : job.job,
                            job.printer.empty() ? "?" : job.printer, job.user.empty() ? "?" : job.user,
                            to_string(decision), hits ? fmt::format(" ({} detector hits)", hits) : "",
                            reason.empty() ? "" : fmt::format(": {}", reason));
    return r;
}

Record make_customer_data_found_record(const CustomerDataFound& f, std::string_view detail) {
    Record r = base(Kind::customer_data_found);
    r.set(field::path, f.path);
    if (f.dev || f.ino) r.set(field::device, f.dev).set(field::inode, f.ino);
    if (f.uid != 0xffffffffu) r.set(field::uid, f.uid);
    r.set(field::user, f.user);
    if (f.pid) r.set(field::pid, f.pid);
    r.set(field::exe, f.exe);
    r.set(field::client, f.client);
    std::string detectors;
    std::uint64_t hits = 0;
    for (const auto& [name, count] : f.detector_hits) {
        if (count == 0) continue;
        detectors += fmt::format("{}{}:{}", detectors.empty() ? "" : ",", name, count);
        hits += count;
    }
    r.set(field::detectors, detectors);
    r.set(field::hits, hits);
    if (f.edm) r.set(field::persons, std::to_string(f.persons));
    std::string categories;
    for (const auto& c : f.categories) categories += (categories.empty() ? "" : ",") + c;
    r.set(field::categories, categories);
    r.set(field::copy_of, f.copy_of);
    r.set(field::zone, f.zone);
    r.set(field::action, f.action);
    r.message = fmt::format("customer data found outside zones: {} written by {}{}{}{}: {}{}",
                            f.path.empty() ? "?" : f.path, f.user.empty() ? "?" : f.user,
                            !f.client.empty()           ? fmt::format(" from {}", f.client)
                            : !f.client_unknown.empty() ? fmt::format(" from a client that could not be established ({})",
                                                                      f.client_unknown)
                                                        : std::string(),
                            f.copy_of.empty() ? "" : fmt::format(", a copy of a file of zone {}", f.copy_of),
                            hits ? fmt::format(" ({} detector hits)", hits) : "", f.action,
                            detail.empty() ? "" : fmt::format(" ({})", detail));
    return r;
}

Record make_admin_change_record(std::string_view actor, std::uint32_t actor_uid, std::string_view action,
                                std::string_view target, std::string_view detail) {
    Record r = base(Kind::admin_change);
    r.set(field::user, actor);
    r.set(field::uid, actor_uid);
    r.set(field::admin_action, action);
    r.set(field::target, target);
    r.message = fmt::format("{} ({}) {}{}{}", actor.empty() ? "?" : actor, actor_uid, action,
                            target.empty() ? "" : fmt::format(" {}", target),
                            detail.empty() ? "" : fmt::format(": {}", detail));
    return r;
}

Record make_policy_reload_record(const PolicyReload& reload) {
    Record r = base(Kind::policy_reload);
    r.set(field::policy_result, reload.accepted ? "accepted" : "refused");
    r.set(field::path, reload.source);
    r.set(field::policy_digest, reload.digest);
    r.set("CUSTGUARD_ZONES", std::to_string(reload.zones));
    r.set("CUSTGUARD_ERRORS", std::to_string(reload.errors));
    r.set("CUSTGUARD_WARNINGS", std::to_string(reload.warnings));
    r.set(field::diagnostics, reload.diagnostics);
    r.message = reload.accepted
                    ? fmt::format("policy {} loaded: {} zones, {} warnings", reload.source, reload.zones,
                                  reload.warnings)
                    : fmt::format("policy {} refused with {} errors; the running policy stays in force",
                                  reload.source, reload.errors);
    return r;
}

Record make_lost_record(std::string_view source, std::uint64_t count, std::string_view reason) {
    Record r = base(Kind::lost);
    r.set(field::lost_count, count);
    r.set(field::lost_source, source);
    r.set(field::lost_reason, reason);
    r.message = fmt::format("{} events lost ({}){}", count, source,
                            reason.empty() ? "" : fmt::format(": {}", reason));
    return r;
}

Record make_sensor_mismatch_record(std::string_view detail, std::string_view sensors, std::string_view path,
                                   std::uint32_t pid) {
    Record r = base(Kind::sensor_mismatch);
    r.set(field::sensors, sensors);
    r.set(field::path, path);
    if (pid) r.set(field::pid, pid);
    r.message = fmt::format("sensor mismatch ({}): {}", sensors, detail);
    return r;
}

Record make_bulk_read_record(const BulkRead& bulk) {
    Record r = base(Kind::bulk_read);
    r.set(field::uid, bulk.uid);
    r.set(field::user, bulk.user);
    r.set(field::zone, bulk.zone);
    r.set(field::files, bulk.files);
    r.set(field::window, bulk.window_seconds);
    r.set(field::action, bulk.action);
    r.set(field::client, bulk.client);
    r.message = fmt::format("bulk read: {} ({}) read {} files of zone {} within {} s{}; action {}",
                            bulk.user.empty() ? "?" : bulk.user, bulk.uid, bulk.files, bulk.zone,
                            bulk.window_seconds, bulk.client.empty() ? "" : fmt::format(" from {}", bulk.client),
                            bulk.action);
    return r;
}

}  // namespace custguard::events
