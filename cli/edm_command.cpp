#include "edm_command.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>

#include "custguard/edm/build.hpp"
#include "custguard/edm/edm.hpp"

namespace custguard::cli {

namespace {

tl::expected<std::string, std::string> read_csv(const std::string& path) {
    const int fd = path == "-" ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tl::unexpected("cannot open '" + path + "': " + std::strerror(errno));
    std::string bytes;
    char buf[1 << 16];
    std::string error;
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = "cannot read '" + path + "': " + std::strerror(errno);
            break;
        }
        if (bytes.size() + static_cast<std::size_t>(n) > edm::max_csv_bytes) {
            error = "'" + path + "' is larger than " + std::to_string(edm::max_csv_bytes >> 30) + " GiB: split the export";
            break;
        }
        bytes.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (!error.empty()) return tl::unexpected(error);
    return bytes;
}

std::string stem(const std::string& path) {
    std::string name = path.substr(path.rfind('/') + 1);
    if (name.ends_with(".toml")) name.resize(name.size() - 5);
    return name;
}

}  // namespace

int run_edm_build(const EdmBuildOptions& options, std::ostream& out, std::ostream& err) {
    auto fail = [&](const std::string& message) {
        err << "custguardctl edm build: " << message << "\n";
        return 2;
    };
    if (options.schema.empty() || options.csv.empty())
        return fail("name the schema and the export: custguardctl edm build --schema crm.toml crm.csv");
    auto schema = edm::load_schema(options.schema);
    if (!schema) return fail(schema.error());
    if (!options.encoding.empty()) {
        if (options.encoding != "utf-8" && options.encoding != "cp932")
            return fail("--encoding must be utf-8 or cp932, not '" + options.encoding + "'");
        schema->encoding = options.encoding;
    }
    const std::string output = options.output.empty() ? std::string(k_edm_dir) + "/" + stem(options.schema) + ".edm" : options.output;
    const std::string key_path = options.key.empty() ? edm::default_key_path(output) : options.key;

    auto csv = read_csv(options.csv);
    if (!csv) return fail(csv.error());
    if (schema->encoding == "cp932") {
        auto converted = edm::cp932_to_utf8(*csv);
        if (!converted) return fail("'" + options.csv + "': " + converted.error());
        *csv = std::move(*converted);
    }
    // The output's directory before the key: the key usually lives there.
    if (const auto slash = output.rfind('/'); slash != std::string::npos && slash > 0)
        if (::mkdir(output.substr(0, slash).c_str(), 0700) != 0 && errno != EEXIST)
            return fail("cannot create '" + output.substr(0, slash) + "': " + std::strerror(errno));
    bool created = false;
    auto key = edm::load_or_create_key(key_path, &created);
    if (!key) return fail(key.error());
    auto built = edm::build_index(*schema, *key, *csv);
    csv->clear();
    if (!built) return fail("'" + options.csv + "': " + built.error());
    if (built->indexed == 0)
        return fail("'" + options.csv + "': no row could be indexed (" + std::to_string(built->skipped) +
                    " skipped; first: line " +
                    (built->skipped_rows.empty() ? std::string("-") : std::to_string(built->skipped_rows[0].line) + ": " + built->skipped_rows[0].reason) +
                    "); check --encoding and the schema's columns");
    if (auto written = edm::write_index(output, built->index, *key); !written) return fail(written.error());

    if (created) out << "created key " << key_path << " (0600; keep it: the index is useless without it)\n";
    out << "rows read: " << built->rows << "\nindexed:   " << built->indexed << "\nskipped:   " << built->skipped << "\n";
    for (const auto& row : built->skipped_rows) out << "  " << options.csv << ":" << row.line << ": " << row.reason << "\n";
    if (built->skipped > built->skipped_rows.size())
        out << "  ... and " << built->skipped - built->skipped_rows.size() << " more\n";
    out << "index:     " << output << " (primary " << schema->primary.column << " as " << edm::to_string(schema->primary.kind)
        << ", " << schema->supporting.size() << " supporting, min_supporting " << schema->min_supporting << ", near "
        << schema->near << ")\n";
    return built->skipped ? 1 : 0;
}

}  // namespace custguard::cli
