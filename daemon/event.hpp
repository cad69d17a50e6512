// Access events as every sensor delivers them to the event pipeline.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "custguard_abi.h"

namespace custguard::daemon {

// Which sensor saw the event.
enum class Sensor : std::uint8_t { bpf_lsm, fanotify, audit };
std::string_view to_string(Sensor);

// What the pipeline's flood bound for refusals (events/repeat.hpp) said of a denied
// access that its sensor asked about before describing it (Pipeline::admit()). A flood of
// one user's refusals is counted into one `repeated` record, so a `counted` denial need
// not be described: the sensor skips naming the file, reading the open's flags and looking
// up the client, and costs the machine less while someone floods it.
enum class Admission : std::uint8_t { not_asked, first, written, counted };

// One decided operation on a zone file, before enrichment. `raw` has the same contents
// whichever enforcer produced it; `path` is the full path where user space knows a
// longer one than raw.path can hold.
struct AccessEvent {
    cg_event raw{};
    std::string path;
    Sensor sensor = Sensor::fanotify;
    std::int64_t realtime_ns = 0;  // wall-clock time the sensor saw it
    // The Samba client address, when the sensor looked it up while the access waited for
    // its answer (fanotify); "" = the pipeline looks it up when it enriches the event.
    std::string client;
    // Set when the sensor asked (DenialAdmitter); then the pipeline does not ask again.
    Admission admission = Admission::not_asked;
};

// Called from sensor threads; must be thread-safe and must not block for long.
using EventHandler = std::function<void(AccessEvent&&)>;
// Asked from sensor threads before a denied access is described (raw filled in, path
// not yet): thread-safe, quick. The answer goes into AccessEvent::admission.
using DenialAdmitter = std::function<Admission(const AccessEvent&)>;

// Counters a sensor reports for `custguardctl status` and lost-event records.
struct SensorCounters {
    std::uint64_t events = 0;   // events delivered
    std::uint64_t dropped = 0;  // events lost before delivery (ring buffer full, ...)
    std::uint64_t denied = 0;
    std::uint64_t errors = 0;
    // fanotify only (0 under BPF LSM, which decides every open in the kernel):
    std::uint64_t overload = 0;          // opens answered without a full decision, the enforcer behind
    std::uint64_t overload_refused = 0;  // of those, refused (zone files, and files it could not place)
    std::uint64_t rescans = 0;           // notify-queue overflows, each followed by a rescan of the zones
};

}  // namespace custguard::daemon
