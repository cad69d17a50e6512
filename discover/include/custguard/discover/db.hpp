// The survey's SQLite store: an owning connection and statements (RAII), the schema and
// its version. One writer (the survey's main thread); WAL so a reader (another `discover
// --json` run, sqlite3 by hand) never blocks it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

struct sqlite3;
struct sqlite3_stmt;

namespace custguard::discover {

// PRAGMA user_version of the store this build writes. A store with another version is
// refused with a message that says to remove it (it is a cache: the next run rebuilds it).
inline constexpr int k_schema_version = 1;

class Statement {
public:
    Statement() = default;
    explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}

    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::string_view value);
    Statement& bind_blob(int index, std::string_view value);
    // true: a row is ready (read it with the column accessors); false: done. Resets the
    // statement when done or on error, so it can be bound and stepped again.
    tl::expected<bool, std::string> step();
    void reset();

    std::int64_t int64(int column) const;
    std::string_view text(int column) const;
    std::string_view blob(int column) const;

private:
    struct Finalize {
        void operator()(sqlite3_stmt* s) const;
    };
    std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
};

class Database {
public:
    // Opens (creating it, mode 0600, when missing) and migrates nothing: a fresh file gets
    // the schema, a file of this version is used, any other is refused. Errors name the file.
    static tl::expected<Database, std::string> open(const std::string& path);

    tl::expected<void, std::string> exec(const char* sql);
    tl::expected<Statement, std::string> prepare(std::string_view sql);
    // Rows changed by the last INSERT, UPDATE or DELETE.
    std::int64_t changes() const;
    const std::string& path() const { return path_; }
    // Whether only this process's user can have written the store: the file (and its WAL,
    // if any) owned by the effective user, writable by no group or other.
    bool private_to_owner() const;

private:
    struct Close {
        void operator()(sqlite3* db) const;
    };
    Database(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
    std::string error(std::string_view what) const;

    std::string path_;
    std::unique_ptr<sqlite3, Close> db_;
};

// BEGIN on construction, ROLLBACK on destruction unless commit() succeeded.
class Transaction {
public:
    static tl::expected<Transaction, std::string> begin(Database& db);
    Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();
    tl::expected<void, std::string> commit();

private:
    explicit Transaction(Database& db) : db_(&db) {}
    Database* db_;
};

}  // namespace custguard::discover
