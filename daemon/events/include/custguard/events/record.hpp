// The pipeline's record: one journald entry, one JSON line, one console line. Every
// component submits Records (or AccessEvents, which the pipeline turns into Records).
// Fields are journald names ("CUSTGUARD_PATH"); values are bytes. Matched customer data
// never goes into a Record: the builders below take paths, counts and detector names only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "custguard/events/message_ids.hpp"

namespace custguard::events {

// Field names of DESIGN.md "Contracts" plus the ones this pipeline adds. Components may
// set other CUSTGUARD_* fields; they are written as given and exported as custguard.*.
namespace field {
inline constexpr std::string_view event = "CUSTGUARD_EVENT";
inline constexpr std::string_view decision = "CUSTGUARD_DECISION";
inline constexpr std::string_view zone = "CUSTGUARD_ZONE";
inline constexpr std::string_view zone_id = "CUSTGUARD_ZONE_ID";
inline constexpr std::string_view path = "CUSTGUARD_PATH";
inline constexpr std::string_view uid = "CUSTGUARD_UID";
inline constexpr std::string_view user = "CUSTGUARD_USER";
inline constexpr std::string_view gid = "CUSTGUARD_GID";
inline constexpr std::string_view group = "CUSTGUARD_GROUP";
inline constexpr std::string_view auid = "CUSTGUARD_AUID";
inline constexpr std::string_view auid_user = "CUSTGUARD_AUID_USER";
inline constexpr std::string_view pid = "CUSTGUARD_PID";
inline constexpr std::string_view tid = "CUSTGUARD_TID";
inline constexpr std::string_view comm = "CUSTGUARD_COMM";
inline constexpr std::string_view exe = "CUSTGUARD_EXE";
inline constexpr std::string_view cmdline = "CUSTGUARD_CMDLINE";
inline constexpr std::string_view ppid = "CUSTGUARD_PPID";
inline constexpr std::string_view parent_comm = "CUSTGUARD_PARENT_COMM";
inline constexpr std::string_view unit = "CUSTGUARD_UNIT";
inline constexpr std::string_view cgroup = "CUSTGUARD_CGROUP";
inline constexpr std::string_view client = "CUSTGUARD_CLIENT";
inline constexpr std::string_view process_exited = "CUSTGUARD_PROCESS_EXITED";
inline constexpr std::string_view exe_changed = "CUSTGUARD_EXE_CHANGED";
inline constexpr std::string_view later_exe = "CUSTGUARD_LATER_EXE";
inline constexpr std::string_view operation = "CUSTGUARD_OPERATION";
inline constexpr std::string_view access = "CUSTGUARD_ACCESS";
inline constexpr std::string_view rule = "CUSTGUARD_RULE";
inline constexpr std::string_view sensor = "CUSTGUARD_SENSOR";
inline constexpr std::string_view repeats = "CUSTGUARD_REPEATS";  // more reads an allowed read stands for
inline constexpr std::string_view inode = "CUSTGUARD_INODE";
inline constexpr std::string_view device = "CUSTGUARD_DEVICE";
inline constexpr std::string_view printer = "CUSTGUARD_PRINTER";
inline constexpr std::string_view job = "CUSTGUARD_JOB";
inline constexpr std::string_view title = "CUSTGUARD_TITLE";
inline constexpr std::string_view pages = "CUSTGUARD_PAGES";
inline constexpr std::string_view detectors = "CUSTGUARD_DETECTORS";
inline constexpr std::string_view hits = "CUSTGUARD_HITS";
inline constexpr std::string_view admin_action = "CUSTGUARD_ADMIN_ACTION";
inline constexpr std::string_view target = "CUSTGUARD_TARGET";
inline constexpr std::string_view policy_result = "CUSTGUARD_POLICY_RESULT";
inline constexpr std::string_view policy_digest = "CUSTGUARD_POLICY_DIGEST";
inline constexpr std::string_view diagnostics = "CUSTGUARD_DIAGNOSTICS";
inline constexpr std::string_view lost_count = "CUSTGUARD_LOST";
inline constexpr std::string_view lost_source = "CUSTGUARD_LOST_SOURCE";
inline constexpr std::string_view lost_reason = "CUSTGUARD_LOST_REASON";
inline constexpr std::string_view files = "CUSTGUARD_FILES";
inline constexpr std::string_view window = "CUSTGUARD_WINDOW_SEC";
inline constexpr std::string_view action = "CUSTGUARD_ACTION";
inline constexpr std::string_view sensors = "CUSTGUARD_SENSORS";
inline constexpr std::string_view time_usec = "CUSTGUARD_TIME_USEC";
// `repeated` records (see repeat.hpp):
inline constexpr std::string_view copy_of = "CUSTGUARD_COPY_OF";          // zone whose file this is a copy of
inline constexpr std::string_view persons = "CUSTGUARD_PERSONS";         // distinct CRM customers (EDM detectors)
inline constexpr std::string_view categories = "CUSTGUARD_CATEGORIES";    // kinds of customer data found
inline constexpr std::string_view repeated = "CUSTGUARD_REPEATED";    // kind of the records counted
inline constexpr std::string_view count = "CUSTGUARD_COUNT";          // all of the key in the window
inline constexpr std::string_view suppressed = "CUSTGUARD_SUPPRESSED";  // of those, not written one by one
inline constexpr std::string_view first_usec = "CUSTGUARD_FIRST_USEC";  // first and last of the suppressed
inline constexpr std::string_view last_usec = "CUSTGUARD_LAST_USEC";
// Set by the pipeline when the record is committed (journal or spool):
inline constexpr std::string_view seq = "CUSTGUARD_SEQ";
inline constexpr std::string_view run = "CUSTGUARD_RUN";
}  // namespace field

struct Field {
    std::string name;
    std::string value;
    bool operator==(const Field&) const = default;
};

struct Record {
    Kind kind = Kind::access_allowed;
    std::int64_t realtime_us = 0;  // when it happened (CLOCK_REALTIME); 0: when written
    std::string message;           // MESSAGE (one readable sentence)
    std::vector<Field> fields;     // CUSTGUARD_* in insertion order, names unique
    // Set on a refusal its subject can repeat at will (a refused D-Bus call: "bus:UID"):
    // the pipeline then writes the first few of a key per window and counts the rest into
    // a `repeated` record (repeat.hpp). Not written to the journal.
    std::string repeat_key;

    // Set (or replace) a field. Empty values are skipped: absent beats "".
    Record& set(std::string_view name, std::string_view value);
    Record& set(std::string_view name, std::uint64_t value);
    // Append without looking for an existing field: for builders that set each name once.
    Record& add(std::string_view name, std::string_view value);
    Record& add(std::string_view name, std::uint64_t value);
    const std::string* get(std::string_view name) const;
};

// True for a name journald accepts from clients: [A-Z0-9_], not starting with '_' or a
// digit, at most 64 characters.
bool valid_field_name(std::string_view name);

// Builders for the kinds other components report. Each sets CUSTGUARD_EVENT and a
// MESSAGE; callers may add fields afterwards.

enum class PrintDecision : std::uint8_t { allow, audit, deny, hold };

struct PrintJob {
    std::string printer;
    std::string job;    // CUPS job id
    std::string user;   // requesting user (CUPS)
    std::uint32_t uid = 0xffffffffu;
    std::string title;  // job title as CUPS reports it (no document contents)
    std::uint32_t pages = 0;
    std::string client;  // host the job came from
    // Detector name -> number of hits. Only names and counts: never the matched text.
    std::map<std::string, std::uint32_t> detector_hits;
};
Record make_print_record(const PrintJob& job, PrintDecision decision, std::string_view reason = {});

// A file outside every zone found holding customer data ([watch]).
struct CustomerDataFound {
    std::string path;
    std::uint64_t dev = 0, ino = 0;  // st_dev, st_ino
    std::uint32_t uid = 0xffffffffu;  // writer (0xffffffff: unknown)
    std::string user;
    std::uint32_t pid = 0;
    std::string exe;
    std::string client;   // the SMB client(s) an smbd wrote it for, comma-separated
    // smbd wrote it and `client` is empty: why the client could not be established.
    std::string client_unknown;
    std::map<std::string, std::uint32_t> detector_hits;  // names and counts only
    bool edm = false;           // an EDM detector was configured: persons is a count
    std::uint64_t persons = 0;  // distinct CRM customers found (EDM)
    std::vector<std::string> categories;  // payment_card, my_number, contact, sensitive
    std::string copy_of;  // zone whose file it equals byte for byte
    std::string zone;     // zone it was put under (protect), else empty
    std::string action;   // recorded | notified | protected
};
Record make_customer_data_found_record(const CustomerDataFound& found, std::string_view detail = {});

Record make_admin_change_record(std::string_view actor, std::uint32_t actor_uid,
                                std::string_view action, std::string_view target,
                                std::string_view detail = {});

struct PolicyReload {
    bool accepted = true;
    std::string source;   // policy file path
    std::string digest;   // e.g. sha256 of the merged sources
    std::uint32_t zones = 0;
    std::uint32_t errors = 0;
    std::uint32_t warnings = 0;
    std::string diagnostics;  // formatted diagnostics (refused policies)
};
Record make_policy_reload_record(const PolicyReload& reload);

// `count` events from `source` ("bpf_lsm", "fanotify", "pipeline-queue", "spool", ...)
// that were not recorded. Not to be confused with the records it stands for: it has its
// own CUSTGUARD_SEQ.
Record make_lost_record(std::string_view source, std::uint64_t count, std::string_view reason);

Record make_sensor_mismatch_record(std::string_view detail, std::string_view sensors,
                                   std::string_view path = {}, std::uint32_t pid = 0);

struct BulkRead {
    std::uint32_t uid = 0;
    std::string user;
    std::string zone;
    std::uint32_t files = 0;
    std::uint32_t window_seconds = 0;
    std::string action;  // "alert" | "revoke"
    std::string client;
};
Record make_bulk_read_record(const BulkRead& bulk);

std::string_view to_string(PrintDecision decision);

}  // namespace custguard::events
