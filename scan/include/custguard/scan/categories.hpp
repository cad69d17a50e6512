// The categories of customer data detectors find, by detector name: one table for the
// watcher's records (CUSTGUARD_CATEGORIES), `custguardctl discover` and the reports, so
// the same data is never spelled two ways. Keywords have no category (a keyword names a
// kind of document, not a customer's data); EDM detectors count customers whose data may
// be of any category.
#pragma once

#include <string_view>

namespace custguard::scan {

struct CategoryOf {
    std::string_view detector;
    std::string_view category;
};

inline constexpr CategoryOf k_categories[] = {
    {"sensitive", "sensitive"},  // 要配慮個人情報 terms (病歴, 犯罪歴 ...)
    {"credit_card", "payment_card"}, {"my_number", "my_number"},
    {"email", "contact"},          {"jp_phone", "contact"},        {"jp_address", "contact"},
};

// Every category, in report order (most serious first).
inline constexpr std::string_view k_category_names[] = {"sensitive", "payment_card", "my_number", "contact"};

// The category of a detector name; empty when it has none.
constexpr std::string_view category_of(std::string_view detector) {
    for (const auto& c : k_categories)
        if (c.detector == detector) return c.category;
    return {};
}

// What people read for a category.
constexpr std::string_view category_label(std::string_view category) {
    if (category == "sensitive") return "要配慮 (sensitive)";
    if (category == "payment_card") return "payment cards";
    if (category == "my_number") return "My Number";
    if (category == "contact") return "contact data";
    return category;
}

}  // namespace custguard::scan
