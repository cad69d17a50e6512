#include "custguard/discover/db.hpp"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace custguard::discover {

namespace {

// Paths, identities and counts only: never file content. Times in nanoseconds.
constexpr const char* k_schema = R"sql(
CREATE TABLE files(
    path TEXT PRIMARY KEY,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,   -- detector configuration the findings were counted with
    readable INTEGER NOT NULL,
    reason TEXT NOT NULL,        -- why not readable; empty when readable
    doc_type TEXT NOT NULL,
    findings TEXT NOT NULL,      -- "credit_card=2 email=1": detector names and counts
    seen INTEGER NOT NULL        -- last run that scanned the file
) WITHOUT ROWID;
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
)sql";

}  // namespace

void Statement::Finalize::operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
void Database::Close::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

Statement& Statement::bind(int index, std::int64_t value) {
    sqlite3_bind_int64(stmt_.get(), index, value);
    return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
    sqlite3_bind_text(stmt_.get(), index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    return *this;
}

Statement& Statement::bind_blob(int index, std::string_view value) {
    sqlite3_bind_blob(stmt_.get(), index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    return *this;
}

tl::expected<bool, std::string> Statement::step() {
    const int r = sqlite3_step(stmt_.get());
    if (r == SQLITE_ROW) return true;
    sqlite3_reset(stmt_.get());
    if (r == SQLITE_DONE) return false;
    return tl::unexpected(std::string(sqlite3_errmsg(sqlite3_db_handle(stmt_.get()))));
}

void Statement::reset() { sqlite3_reset(stmt_.get()); }

std::int64_t Statement::int64(int column) const { return sqlite3_column_int64(stmt_.get(), column); }

std::string_view Statement::text(int column) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), column));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column)))
             : std::string_view{};
}

std::string_view Statement::blob(int column) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_.get(), column));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column)))
             : std::string_view{};
}

bool Database::private_to_owner() const {
    for (const auto& file : {path_, path_ + "-wal"}) {
        struct stat st;
        if (::stat(file.c_str(), &st) != 0) {
            if (errno == ENOENT && file != path_) continue;
            return false;
        }
        if (st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) return false;
    }
    return true;
}

std::string Database::error(std::string_view what) const {
    return std::string(what) + " '" + path_ + "': " + sqlite3_errmsg(db_.get());
}

tl::expected<Database, std::string> Database::open(const std::string& path) {
    // The store names the files that hold customer data: readable by its owner only.
    const mode_t old_mask = ::umask(077);
    sqlite3* raw = nullptr;
    const int r = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                  nullptr);
    ::umask(old_mask);
    Database db(path, raw);
    if (r != SQLITE_OK)
        return tl::unexpected("cannot open the survey store '" + path + "': " +
                              (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(r)) +
                              " — check that its directory exists and is writable, or name another with --db");
    sqlite3_busy_timeout(raw, 10'000);
    // The WAL is kept at close, not checkpointed into the store: a checkpoint syncs the WAL
    // and the store, and the next run's first write syncs the WAL header again; four
    // fdatasync calls took 20-120 ms of a 0.3 s run that found 1% changed on a busy disk.
    // SQLite still checkpoints once the WAL holds 1,000 pages.
    sqlite3_db_config(raw, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    if (auto e = db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !e) return tl::unexpected(e.error());
    auto version = db.prepare("PRAGMA user_version");
    if (!version) return tl::unexpected(version.error());
    auto row = version->step();
    if (!row || !*row) return tl::unexpected(db.error("cannot read the schema version of"));
    const auto have = version->int64(0);
    version->reset();
    if (have == 0) {
        auto tx = Transaction::begin(db);
        if (!tx) return tl::unexpected(tx.error());
        if (auto e = db.exec(k_schema); !e) return tl::unexpected(e.error());
        const std::string set = "PRAGMA user_version=" + std::to_string(k_schema_version);
        if (auto e = db.exec(set.c_str()); !e) return tl::unexpected(e.error());
        if (auto e = tx->commit(); !e) return tl::unexpected(e.error());
    } else if (have != k_schema_version) {
        return tl::unexpected("the survey store '" + path + "' has schema version " + std::to_string(have) +
                              ", this custguardctl writes version " + std::to_string(k_schema_version) +
                              " — remove the file (it is rebuilt by the next survey) or name another with --db");
    }
    return db;
}

tl::expected<void, std::string> Database::exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &message) != SQLITE_OK) {
        std::string m = message ? message : "unknown error";
        sqlite3_free(message);
        return tl::unexpected("survey store '" + path_ + "': " + m);
    }
    return {};
}

tl::expected<Statement, std::string> Database::prepare(std::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK)
        return tl::unexpected(error("cannot prepare a statement on"));
    return Statement(stmt);
}

std::int64_t Database::changes() const { return sqlite3_changes64(db_.get()); }

tl::expected<Transaction, std::string> Transaction::begin(Database& db) {
    if (auto e = db.exec("BEGIN IMMEDIATE"); !e) return tl::unexpected(e.error());
    return Transaction(db);
}

Transaction::~Transaction() {
    if (db_) (void)db_->exec("ROLLBACK");
}

tl::expected<void, std::string> Transaction::commit() {
    auto e = db_->exec("COMMIT");
    if (e) db_ = nullptr;
    return e;
}

}  // namespace custguard::discover
