// Every invalid policy is refused with its diagnostic at the right line and column.
#include <catch2/catch.hpp>

#include "fixtures.hpp"

using custguard::test::load_text;

namespace {

struct Case {
    const char* name;
    const char* text;
    unsigned line;
    unsigned column;
    const char* message;  // substring of the first error
};

// A valid zone to pad cases that need one.
#define ZONE "[[zone]]\nname = \"z\"\npaths = [\"/srv/z\"]\nallow_users = [\"alice\"]\n"

const Case k_cases[] = {
    // syntax
    {"unterminated string", "[daemon]\nenforcer = \"auto\n", 2, 17, "invalid TOML"},
    {"missing value", "[daemon]\nenforcer =\n", 2, 11, "invalid TOML"},
    {"duplicate key", "[daemon]\nenforcer = \"auto\"\nenforcer = \"none\"\n", 3, 12, "cannot redefine existing"},
    {"bad table header", "[daemon\n", 1, 8, "invalid TOML"},
    // unknown keys
    {"unknown top-level key", "zones = []\n", 1, 1, "unknown key 'zones' in the policy"},
    {"unknown daemon key", "[daemon]\nenforce = \"auto\"\n", 2, 1, "unknown key 'enforce' in [daemon]"},
    {"unknown zone key", ZONE "sensitivty = \"personal\"\n", 5, 1, "unknown key 'sensitivty' in [[zone]]"},
    {"unknown print key", "[print]\nprinters = []\n", 2, 1, "unknown key 'printers' in [print]"},
    {"unknown mail key", "[mail]\nserver = \"x\"\n", 2, 1, "unknown key 'server' in [mail]"},
    {"unknown notify key", "[notify.m]\nmail = [\"a@b.example\"]\nsms = \"1\"\n[mail]\nfrom = \"c@d.example\"\n", 3, 1,
     "unknown key 'sms' in [notify.m]"},
    {"unknown bulk key", "[bulk]\nmax_files = 3\nlimit = 4\n", 3, 1, "unknown key 'limit' in [bulk]"},
    // wrong types
    {"daemon not a table", "daemon = 3\n", 1, 10, "daemon must be a table"},
    {"zone not array of tables", "zone = \"x\"\n", 1, 8, "'zone' must be an array of tables"},
    {"enforcer not a string", "[daemon]\nenforcer = 1\n", 2, 12, "'enforcer' must be a string"},
    {"paths not an array", "[[zone]]\nname = \"z\"\npaths = \"/srv/z\"\n", 3, 9, "'paths' must be an array of strings"},
    {"path element not a string", "[[zone]]\nname = \"z\"\npaths = [\"/srv/z\", 3]\nallow_users = [\"alice\"]\n", 3, 20,
     "elements of 'paths' must be strings"},
    {"record_allowed not a bool", ZONE "record_allowed = \"yes\"\n", 5, 18, "'record_allowed' must be true or false"},
    {"threshold not an integer", "[print]\nthreshold = \"3\"\n", 2, 13, "'threshold' must be an integer"},
    {"threshold zero", "[print]\nthreshold = 0\n", 2, 13, "'threshold' is 0, out of range"},
    {"scan_timeout not a duration", "[print]\nscan_timeout = \"soon\"\n", 2, 16, "not a valid duration"},
    {"scan_timeout past the backend's wait", "[print]\nscan_timeout = \"3m\"\n", 2, 16, "longer than 2 minutes"},
    {"scan_memory_mb too small", "[print]\nscan_memory_mb = 16\n", 2, 18, "'scan_memory_mb' is 16, out of range"},
    {"max_files negative", "[bulk]\nmax_files = -5\n", 2, 13, "'max_files' is -5, out of range"},
    {"notify target not a table", "[notify]\nm = 3\n", 2, 5, "notify.m must be a table"},
    // bad values
    {"bad enforcer", "[daemon]\nenforcer = \"selinux\"\n", 2, 12, "'enforcer' = \"selinux\" is not a valid value"},
    {"relative state_dir", "[daemon]\nstate_dir = \"var/lib\"\n", 2, 13, "not a normalised absolute path"},
    {"bad sensitivity", ZONE "sensitivity = \"secret\"\n", 5, 15, "'sensitivity' = \"secret\""},
    {"bad on_violation", ZONE "on_violation = \"block\"\n", 5, 16, "'on_violation' = \"block\""},
    {"bad print action", "[print]\naction = \"block\"\n", 2, 10, "'action' = \"block\""},
    {"bad unreadable", "[print]\nunreadable = \"ignore\"\n", 2, 14, "'unreadable' = \"ignore\""},
    {"bad bulk action", "[bulk]\nmax_files = 3\naction = \"kill\"\n", 3, 10, "'action' = \"kill\""},
    {"bad duration unit", "[bulk]\nmax_files = 3\nwindow = \"10w\"\n", 3, 10, "is not a valid duration"},
    {"zero duration", "[bulk]\nmax_files = 3\nwindow = \"0m\"\n", 3, 10, "is not a valid duration"},
    {"unknown detector", "[print]\ndetectors = [\"email\", \"ssn\"]\n", 2, 23, "unknown detector \"ssn\""},
    // exact customer matching (issue 17): an "edm:NAME" detector needs its [edm.NAME] index
    {"edm detector without its table", "[print]\ndetectors = [\"email\", \"edm:unknown\"]\n", 2, 23,
     "names detector \"edm:unknown\" but no [edm.unknown] table"},
    {"edm detector with a bad name", "[print]\ndetectors = [\"edm:a b\"]\n", 2, 14, "not a valid EDM detector name"},
    {"edm table without index", "[edm.crm]\nkey = \"/var/lib/custguard/edm/key\"\n", 1, 6, "[edm.crm] has no 'index'"},
    {"edm index relative", "[edm.crm]\nindex = \"crm.edm\"\n", 2, 9, "not a normalised absolute path"},
    {"unknown edm key", "[edm.crm]\nindex = \"/var/lib/custguard/edm/crm.edm\"\nsalt = 1\n", 3, 1, "unknown key 'salt' in [edm.crm]"},
    {"bad printer name", "[print]\nallow_printers = [\"floor 3\"]\n", 2, 19, "not a valid CUPS queue name"},
    {"smtp not a URL", "[mail]\nsmtp = \"mail.example\"\n", 2, 8, "not an smtp:// or smtps:// URL"},
    {"from not an address", "[mail]\nfrom = \"custguard\"\n", 2, 8, "'from' = \"custguard\" is not a mail address"},
    {"notify mail not an address", "[mail]\nfrom = \"a@b.example\"\n[notify.m]\nmail = [\"manager\"]\n", 4, 9,
     "\"manager\" is not a mail address"},
    {"webhook not http", "[notify.m]\nwebhook = \"ftp://x\"\n", 2, 11, "not an http:// or https:// URL"},
    {"empty keyword", "[print]\nkeywords = [\"\"]\n", 2, 13, "empty keyword"},
    {"blank keyword", "[print]\nkeywords = [\"顧客\", \" \"]\n", 2, 19, "empty keyword"},
    {"empty detector list", "[print]\ndetectors = []\n", 2, 13, "'detectors' is empty"},
    // paths
    {"relative path", "[[zone]]\nname = \"z\"\npaths = [\"srv/z\"]\nallow_users = [\"alice\"]\n", 3, 10,
     "not a normalised absolute path"},
    {"trailing slash", "[[zone]]\nname = \"z\"\npaths = [\"/srv/z/\"]\nallow_users = [\"alice\"]\n", 3, 10,
     "not a normalised absolute path"},
    {"dot-dot in path", "[[zone]]\nname = \"z\"\npaths = [\"/srv/../etc\"]\nallow_users = [\"alice\"]\n", 3, 10,
     "not a normalised absolute path"},
    {"double slash", "[[zone]]\nname = \"z\"\npaths = [\"/srv//z\"]\nallow_users = [\"alice\"]\n", 3, 10,
     "not a normalised absolute path"},
    {"root as zone", "[[zone]]\nname = \"z\"\npaths = [\"/\"]\nallow_users = [\"alice\"]\n", 3, 10,
     "not a normalised absolute path"},
    {"path twice in zone", "[[zone]]\nname = \"z\"\npaths = [\"/srv/z\", \"/srv/z\"]\nallow_users = [\"alice\"]\n", 3, 20,
     "listed twice in zone 'z'"},
    {"relative program", ZONE "allow_programs = [\"smbd\"]\n", 5, 19, "program \"smbd\" is not a normalised absolute path"},
    // zones
    {"zone without name", "[[zone]]\npaths = [\"/srv/z\"]\n", 1, 1, "[[zone]] has no 'name'"},
    {"zone name invalid", "[[zone]]\nname = \"my zone\"\npaths = [\"/srv/z\"]\n", 2, 8, "zone name \"my zone\" is not valid"},
    {"zone twice in a file", ZONE ZONE, 6, 8, "zone 'z' is defined twice in this file"},
    {"empty zone", "[[zone]]\nname = \"z\"\nallow_users = [\"alice\"]\n", 2, 8, "zone 'z' has no paths"},
    {"empty paths list", "[[zone]]\nname = \"z\"\npaths = []\n", 3, 9, "has an empty 'paths' list"},
    {"same path in two zones",
     ZONE "[[zone]]\nname = \"y\"\npaths = [\"/srv/z\"]\nallow_users = [\"alice\"]\n", 7, 10,
     "is in zone 'y' and in zone 'z'"},
    {"nested zone weakens sensitivity",
     "[[zone]]\nname = \"outer\"\npaths = [\"/srv/c\"]\nsensitivity = \"sensitive\"\nallow_users = [\"alice\"]\n"
     "[[zone]]\nname = \"inner\"\npaths = [\"/srv/c/x\"]\nallow_users = [\"alice\"]\n", 8, 10,
     "lies inside sensitive zone 'outer'"},
    {"nested zone weakens violation",
     ZONE "[[zone]]\nname = \"inner\"\npaths = [\"/srv/z/x\"]\non_violation = \"audit\"\nallow_users = [\"alice\"]\n",
     7, 10, "would let its files be read"},
    // principals
    {"state_dir not a string", "[daemon]\nstate_dir = 5\n", 2, 13, "'state_dir' must be a string"},
    {"unknown user in list", "[[zone]]\nname = \"z\"\npaths = [\"/srv/z\"]\nallow_users = [\"alice\", \"mallory\"]\n", 4, 25,
     "unknown user 'mallory'"},
    {"unknown group", "[[zone]]\nname = \"z\"\npaths = [\"/srv/z\"]\nallow_users = [\"%hr\"]\n", 4, 16, "unknown group 'hr'"},
    {"invalid user name", "[[zone]]\nname = \"z\"\npaths = [\"/srv/z\"]\nallow_users = [\"a b\"]\n", 4, 16,
     "is not a valid user or %group name"},
    {"user listed twice", "[[zone]]\nname = \"z\"\npaths = [\"/srv/z\"]\nallow_users = [\"alice\", \"alice\"]\n", 4, 25,
     "'alice' is listed twice"},
    {"unknown print user", "[print]\nallow_users = [\"%nobody-group\"]\n", 2, 16, "unknown group 'nobody-group'"},
    // devices
    {"malformed CIDR", ZONE "allow_clients = [\"10.0.0.0/33\"]\n", 5, 18, "is not an IP address, network or host name"},
    {"host bits in network", ZONE "allow_clients = [\"10.0.0.1/8\"]\n", 5, 18, "is not an IP address"},
    {"numeric garbage client", ZONE "allow_clients = [\"300.1.1.1\"]\n", 5, 18, "is not an IP address"},
    {"allow_media is not enforced", ZONE "allow_media = [\"0781:5567\"]\n", 5, 15, "'allow_media' is not enforced"},
    // references
    // At the entry that names it, not at the zone or section (regression).
    {"undefined notify target", ZONE "notify = [\"boss\"]\n", 5, 11, "notifies undefined target 'boss'"},
    {"undefined print notify", "[print]\nnotify = [\"boss\"]\n", 2, 11, "[print] notifies undefined target 'boss'"},
    {"undefined bulk notify, on its own line", "[bulk]\nmax_files = 5\nnotify = [\n  \"boss\",\n]\n", 4, 3,
     "[bulk] notifies undefined target 'boss'"},
    {"notify target without channel", "[notify.m]\ndigest = \"1h\"\n", 1, 9, "has no 'mail' or 'webhook'"},
    {"mail target without from", "[notify.m]\nmail = [\"a@b.example\"]\n", 1, 9, "[mail] has no 'from'"},
    {"bulk without limits", "[bulk]\nwindow = \"10m\"\n", 1, 1, "sets neither 'max_files' nor 'max_bytes'"},
};

}  // namespace

TEST_CASE("invalid policies are refused at the right position", "[policy][invalid]") {
    REQUIRE(std::size(k_cases) >= 40);
    for (const auto& c : k_cases) {
        DYNAMIC_SECTION(c.name) {
            auto result = load_text(c.text);
            REQUIRE_FALSE(result.has_value());
            const auto& diags = result.error();
            auto first = std::find_if(diags.begin(), diags.end(), [](const auto& d) {
                return d.severity == custguard::policy::Severity::error;
            });
            REQUIRE(first != diags.end());
            INFO(first->format());
            CHECK(first->pos.file == "policy.toml");
            CHECK(first->pos.line == c.line);
            CHECK(first->pos.column == c.column);
            CHECK_THAT(first->message, Catch::Contains(c.message));
            CHECK_FALSE(first->hint.empty());
            CHECK_THAT(first->format(), Catch::StartsWith("policy.toml:" + std::to_string(c.line) + ":" +
                                                           std::to_string(c.column) + ": error: "));
        }
    }
}

TEST_CASE("a typo in a key suggests the known key", "[policy][invalid]") {
    auto result = load_text(ZONE "alow_users = [\"bob\"]\n");
    REQUIRE_FALSE(result);
    CHECK_THAT(result.error().front().hint, Catch::Contains("did you mean 'allow_users'?"));
}

TEST_CASE("all errors of a file are reported, not only the first", "[policy][invalid]") {
    auto result = load_text("[daemon]\nenforcer = \"x\"\nstate_dir = \"rel\"\n[print]\nthreshold = 0\n");
    REQUIRE_FALSE(result);
    CHECK(result.error().size() == 3);
}

// Regression: toml++ 3.3 hits __builtin_unreachable() on some non-ASCII characters where
// it expects white space (found by fuzz/policy); the loader must refuse them first.
TEST_CASE("non-ASCII outside strings is refused before the TOML parser sees it", "[policy][invalid][regression]") {
    struct Row { const char* text; unsigned line, column; };
    const Row rows[] = {
        {"[daemon]\nenforcer = \"auto\"\xe3\x80\x81\n", 2, 18},   // U+3001 after a value
        {"[daemon]\n\xc3\xa9nforcer = \"auto\"\n", 2, 1},         // U+00E9 in a key
        {"# \xe9\xa1\xa7\xe5\xae\xa2\n[daemon]\nenforcer = \"x\xe9\xa1\xa7\" \xef\xb9\x80\n", 3, 17},  // after a string with 顧
    };
    for (const auto& row : rows) {
        auto result = load_text(row.text);
        REQUIRE_FALSE(result);
        const auto& d = result.error().front();
        INFO(d.format());
        CHECK(d.pos.line == row.line);
        CHECK(d.pos.column == row.column);
        CHECK_THAT(d.message, Catch::Contains("outside a quoted string or comment"));
    }
    // Japanese inside strings and comments stays fine.
    auto ok = load_text("# 顧客 '\"\n[print]\nkeywords = [\"顧客\", '氏名', \"\"\"住\n所\"\"\", '''病\"歴''']\n");
    INFO((ok ? std::string() : ok.error().front().format()));
    CHECK(ok);
}

// Regression: allow_media was accepted, stored and shown, and never enforced. Whatever it
// lists (and wherever it is written), it is refused with the reason and what to do.
TEST_CASE("allow_media is refused with its reason, whatever it lists", "[policy][invalid][regression]") {
    struct Row {
        const char* label;
        const char* value;  // right-hand side of allow_media =
        std::string in;     // "" : the main file; else a drop-in of that name that extends zone z
    };
    const Row rows[] = {
        {"a USB id", "[\"0781:5567\"]", ""},
        {"a USB id with serial", "[\"0781:5567:4C530001\"]", ""},
        {"an empty list", "[]", ""},
        {"not a medium at all", "[\"usb-stick\"]", ""},
        {"not a list", "\"0781:5567\"", ""},
        {"in a drop-in", "[\"0781:5567\"]", "50-usb.toml"},
    };
    for (const auto& row : rows) {
        DYNAMIC_SECTION(row.label) {
            const std::string key = std::string("allow_media = ") + row.value + "\n";
            // Line 5 either way: the drop-in's zone pads to the same line as the main file's.
            auto result = row.in.empty() ? load_text(ZONE + key)
                                         : load_text(ZONE, {{row.in, "[[zone]]\nname = \"z\"\n\n\n" + key}});
            REQUIRE_FALSE(result);
            REQUIRE(result.error().size() == 1);
            const auto& d = result.error().front();
            INFO(d.format());
            CHECK(d.severity == custguard::policy::Severity::error);
            CHECK(d.pos.file == (row.in.empty() ? "policy.toml" : row.in));
            CHECK(d.pos.line == 5);
            CHECK(d.pos.column == 15);
            CHECK(d.message == "'allow_media' is not enforced: removable media are not controlled by custguard in "
                               "this version");
            CHECK_THAT(d.hint, Catch::StartsWith("remove allow_media from zone 'z'"));
        }
    }
}

// `policy check --no-resolve` (configuration management checks on a build host).
TEST_CASE("without required names an unknown user or group is a warning at its value, everything else still refuses",
          "[policy][invalid]") {
    auto load = [](const std::string& text) {
        custguard::policy::LoadInput in;
        in.main = {"policy.toml", text};
        in.now = 1000;
        in.require_names = false;
        return custguard::policy::load(in, custguard::test::test_resolver());
    };
    auto ok = load("[[zone]]\nname = \"z\"\npaths = [\"/srv/z\"]\nallow_users = [\"alice\", \"%hr\", \"ghost\"]\n");
    REQUIRE(ok);
    std::vector<std::string> unknown;
    for (const auto& d : ok->warnings)
        if (d.message.find("not known on this machine") != std::string::npos) unknown.push_back(d.format());
    REQUIRE(unknown.size() == 2);
    CHECK_THAT(unknown[0], Catch::StartsWith("policy.toml:4:25: warning: group 'hr' is not known"));
    CHECK_THAT(unknown[1], Catch::StartsWith("policy.toml:4:32: warning: user 'ghost' is not known"));
    // An unknown key, a bad name and an unknown notify target are still errors.
    for (const char* bad : {"[[zone]]\nname = \"z\"\npaths = [\"/srv/z\"]\nallow_users = [\"%hr\"]\nalow = 1\n",
                            "[[zone]]\nname = \"z\"\npaths = [\"/srv/z\"]\nallow_users = [\"a b\"]\n",
                            "[[zone]]\nname = \"z\"\npaths = [\"/srv/z\"]\nallow_users = [\"%hr\"]\nnotify = [\"x\"]\n"}) {
        INFO(bad);
        CHECK_FALSE(load(bad));
    }
}

TEST_CASE("edm:NAME detectors load with their [edm.NAME] index, in any order of tables", "[policy][edm]") {
    auto loaded = load_text("[print]\ndetectors = [\"sensitive\", \"edm:crm\"]\n"
                            "[edm.crm]\nindex = \"/var/lib/custguard/edm/crm.edm\"\n"
                            "[edm.other]\nindex = \"/srv/edm/other.edm\"\nkey = \"/etc/custguard/edm.key\"\n");
    REQUIRE(loaded);
    const auto& p = loaded->policy;
    CHECK(p.print.detectors == std::vector<std::string>{"sensitive", "edm:crm"});
    REQUIRE(p.find_edm("crm"));
    CHECK(p.find_edm("crm")->index == "/var/lib/custguard/edm/crm.edm");
    CHECK(p.find_edm("crm")->key == "/var/lib/custguard/edm/key");
    REQUIRE(p.find_edm("other"));
    CHECK(p.find_edm("other")->key == "/etc/custguard/edm.key");
}
