// The daemon's own logic against a fake enforcer (DaemonOptions::enforcer_factory): what
// reload, the state, grant expiry and cool-downs hand to the enforcer, and what survives a
// restart. No kernel enforcement, no journald, no exec tracker, no audit: the fake sees
// every policy the daemon installs.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "custguard/common/nss.hpp"
#include "daemon/core/daemon.hpp"

namespace fs = std::filesystem;
using namespace custguard;
using custguard::daemon::Daemon;
using custguard::daemon::DaemonOptions;

namespace {

// What the daemon installed, in order; shared with the test after the daemon owns the fake.
struct Installed {
    std::mutex mutex;
    std::vector<policy::Compiled> applied;
    bool refuse_next = false;  // the next apply() fails, as a full BPF map would
    daemon::SensorCounters counters;  // what the fake reports

    policy::Compiled last() {
        std::lock_guard lk(mutex);
        REQUIRE_FALSE(applied.empty());
        return applied.back();
    }
    std::size_t count() {
        std::lock_guard lk(mutex);
        return applied.size();
    }
};

class FakeEnforcer final : public daemon::Enforcer {
public:
    FakeEnforcer(std::shared_ptr<Installed> seen, std::string name) : seen_(std::move(seen)), name_(std::move(name)) {}
    std::string_view name() const override { return name_; }
    tl::expected<void, std::string> start(daemon::EventHandler) override { return {}; }
    tl::expected<void, std::string> apply(const policy::Compiled& c) override {
        std::lock_guard lk(seen_->mutex);
        if (seen_->refuse_next) {
            seen_->refuse_next = false;
            return tl::unexpected(std::string("fake: table full"));
        }
        seen_->applied.push_back(c);
        return {};
    }
    daemon::SensorCounters counters() const override {
        std::lock_guard lk(seen_->mutex);
        return seen_->counters;
    }
    void stop(bool) override {}

private:
    std::shared_ptr<Installed> seen_;
    std::string name_;
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}
void spit(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

// A scratch directory with a policy of two zones over directories that exist.
struct Scratch {
    fs::path dir;
    std::shared_ptr<Installed> seen = std::make_shared<Installed>();

    Scratch() {
        char tmpl[] = "/tmp/cg-seam.XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
        fs::create_directories(dir / "data" / "customers");
        fs::create_directories(dir / "data" / "hr");
        write_policy("\"root\"");
    }
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    void write_policy(const std::string& customers_users) {
        spit(dir / "policy.toml", "[[zone]]\nname = \"customers\"\npaths = [\"" + (dir / "data/customers").string() +
                                      "\"]\nallow_users = [" + customers_users + "]\n\n[[zone]]\nname = \"hr\"\npaths = [\"" +
                                      (dir / "data/hr").string() + "\"]\nallow_users = [\"root\"]\n");
    }
    std::unique_ptr<Daemon> start(std::string enforcer_name = "fanotify") {
        DaemonOptions o;
        o.policy = dir / "policy.toml";
        o.state_dir = dir / "state";
        o.journal = false;
        o.jsonl_export = dir / "records.jsonl";
        o.audit = daemon::AuditChoice::off;
        o.exec_tracker = false;
        o.enforcer_factory = [seen = seen, enforcer_name]() -> tl::expected<std::unique_ptr<daemon::Enforcer>, std::string> {
            return std::make_unique<FakeEnforcer>(seen, enforcer_name);
        };
        auto d = Daemon::create(std::move(o));
        INFO((d ? std::string() : d.error()));
        REQUIRE(d);
        return std::move(*d);
    }
    std::string records() const { return slurp(dir / "records.jsonl"); }
};

std::uint32_t uid_of(const char* name) {
    auto u = common::nss::user_by_name(name);
    REQUIRE(u);
    REQUIRE(*u);
    return (*u)->uid;
}

bool has_subject(const policy::Compiled& c, std::uint32_t zone, std::uint32_t uid) {
    for (const auto& s : c.subjects)
        if (s.zone_id == zone && s.kind == policy::SubjectKind::uid && s.id == uid) return true;
    return false;
}

}  // namespace

TEST_CASE("reload hands the new policy to the enforcer, a refused policy or a failing enforcer leaves the old one",
          "[unit][daemon]") {
    Scratch s;
    auto d = s.start();
    const auto nobody = uid_of("nobody");
    REQUIRE(s.seen->count() == 1);
    CHECK_FALSE(has_subject(s.seen->last(), 1, nobody));

    s.write_policy("\"root\", \"nobody\"");
    auto ok = d->reload("test");
    CHECK(ok.accepted);
    REQUIRE(s.seen->count() == 2);
    CHECK(has_subject(s.seen->last(), 1, nobody));

    s.write_policy("\"root\", \"no-such-user-cg\"");  // an unknown user refuses the policy
    auto refused = d->reload("test");
    CHECK_FALSE(refused.accepted);
    CHECK(s.seen->count() == 2);  // nothing installed
    CHECK(d->current_policy().zones.at(0).allow_users.size() == 2);

    s.write_policy("\"root\"");
    s.seen->refuse_next = true;  // valid policy, but the enforcer cannot take it
    auto failed = d->reload("test");
    CHECK_FALSE(failed.accepted);
    CHECK(s.seen->count() == 2);
    CHECK(has_subject(s.seen->last(), 1, nobody));  // still what is enforced
    CHECK(d->status().reload_failures == 2);
}

TEST_CASE("a grant reaches the enforcer with its expiry, is pruned when it expires, and survives a restart until then",
          "[unit][daemon]") {
    Scratch s;
    const auto nobody = uid_of("nobody");
    const std::uint64_t now = static_cast<std::uint64_t>(::time(nullptr));
    {
        auto d = s.start();
        auto state = d->current_state();
        state.grants.push_back({"hr", "nobody", now + 3600, "audit of 2026", "root", now, ""});
        auto r = d->update_state(state);
        REQUIRE(r);
        auto c = s.seen->last();
        REQUIRE(c.grants.size() == 1);
        CHECK(c.grants[0].zone_id == 2);
        CHECK(c.grants[0].uid == nobody);
        CHECK(c.grants[0].expires_at == now + 3600);
        CHECK(d->prune_expired_grants(now + 10) == 0);  // not yet
    }
    CHECK_THAT(slurp(s.dir / "state" / "state.toml"), Catch::Contains("audit of 2026"));
    {
        auto d = s.start();  // restart: the grant is read back and enforced again
        REQUIRE(s.seen->last().grants.size() == 1);
        CHECK(d->prune_expired_grants(now + 3600) == 1);
        CHECK(s.seen->last().grants.empty());
        CHECK(d->current_state().grants.empty());
    }
    CHECK_THAT(slurp(s.dir / "state" / "state.toml"), !Catch::Contains("audit of 2026"));
    CHECK_THAT(s.records(), Catch::Contains("admin_change") && Catch::Contains("nobody"));
}

TEST_CASE("a bulk-read cool-down is a deny row until it ends, across a restart, client cool-downs need an enforcer "
          "that can withdraw them",
          "[unit][daemon]") {
    Scratch s;
    const auto nobody = uid_of("nobody");
    const std::int64_t now = ::time(nullptr);
    fs::create_directories(s.dir / "state" / "notify");
    // As the notifier saves them: zone, uid, until, user[, client]; one long ended.
    spit(s.dir / "state" / "notify" / "revoked",
         "customers\t" + std::to_string(nobody) + "\t" + std::to_string(now + 600) + "\tnobody\n" +
             "customers\t0\t" + std::to_string(now + 600) + "\t\t192.0.2.7\n" +
             "hr\t" + std::to_string(nobody) + "\t" + std::to_string(now - 600) + "\tnobody\n" + "damaged line\n");
    {
        auto d = s.start();
        auto c = s.seen->last();
        REQUIRE(c.denies.size() == 1);
        CHECK(c.denies[0].zone_id == 1);
        CHECK(c.denies[0].uid == nobody);
        CHECK(c.denies[0].expires_at == static_cast<std::uint64_t>(now + 600));
        CHECK(c.client_denies.size() == 1);
        CHECK(d->status().revoked.size() == 2);
        d->apply_revocations(static_cast<std::uint64_t>(now + 601));  // both ended
        CHECK(s.seen->last().denies.empty());
        CHECK(s.seen->last().client_denies.empty());
        CHECK(d->status().revoked.empty());
    }
    CHECK(slurp(s.dir / "state" / "notify" / "revoked").empty());

    // An enforcer that cannot withdraw a client's access drops the client cool-down at
    // once, and keeps the user's.
    spit(s.dir / "state" / "notify" / "revoked",
         "customers\t" + std::to_string(nobody) + "\t" + std::to_string(now + 600) + "\tnobody\n" +
             "customers\t0\t" + std::to_string(now + 600) + "\t\t192.0.2.7\n");
    auto d = s.start("none");
    CHECK(d->status().revoked.size() == 1);
    CHECK(s.seen->last().denies.size() == 1);
    CHECK_THAT(slurp(s.dir / "state" / "notify" / "revoked"), !Catch::Contains("192.0.2.7"));
}

// Regression guard: opens the fanotify enforcer refused in overload had no record at all
// (only the status counters said so).
TEST_CASE("an enforcer's dropped events and opens refused in overload become lost records, each counted once, "
          "the last ones at stop",
          "[unit][daemon]") {
    Scratch s;
    auto d = s.start();
    auto report = [&](std::uint64_t dropped, std::uint64_t overload_refused) {
        {
            std::lock_guard lk(s.seen->mutex);
            s.seen->counters.dropped = dropped;
            s.seen->counters.overload = overload_refused * 2;
            s.seen->counters.overload_refused = overload_refused;
        }
        d->poll_sensor_losses();
        REQUIRE(d->pipeline().flush(std::chrono::seconds(10)));
    };
    report(0, 0);
    report(3, 5);
    report(3, 5);  // nothing new: no record
    report(4, 12);
    {
        std::lock_guard lk(s.seen->mutex);
        s.seen->counters.overload_refused = 15;
    }
    d.reset();  // a stop reports what came since the last tick
    // source -> the counts of its lost records, in order
    std::map<std::string, std::vector<std::uint64_t>> lost;
    std::istringstream in(s.records());
    for (std::string line; std::getline(in, line);) {
        if (line.find("\"action\":\"lost\"") == std::string::npos) continue;
        INFO(line);
        auto field = [&](const std::string& name) {
            const auto at = line.find("\"" + name + "\":");
            REQUIRE(at != std::string::npos);
            auto v = line.substr(at + name.size() + 3);
            if (!v.empty() && v[0] == '"') v = v.substr(1);
            return v.substr(0, v.find_first_of("\",}"));
        };
        lost[field("lost_source")].push_back(std::stoull(field("lost")));
        if (field("lost_source") == "fanotify-overload") CHECK_THAT(line, Catch::Contains("refused unrecorded"));
    }
    CHECK(lost["fanotify"] == std::vector<std::uint64_t>{3, 1});
    CHECK(lost["fanotify-overload"] == std::vector<std::uint64_t>{5, 7, 3});
}

TEST_CASE("an enforcer that cannot be made refuses the start with its reason", "[unit][daemon]") {
    Scratch s;
    DaemonOptions o;
    o.policy = s.dir / "policy.toml";
    o.state_dir = s.dir / "state";
    o.journal = false;
    o.audit = daemon::AuditChoice::off;
    o.exec_tracker = false;
    o.enforcer_factory = []() -> tl::expected<std::unique_ptr<daemon::Enforcer>, std::string> {
        return tl::unexpected(std::string("fake: no such facility"));
    };
    auto d = Daemon::create(std::move(o));
    REQUIRE_FALSE(d);
    CHECK_THAT(d.error(), Catch::Contains("no such facility"));
}
