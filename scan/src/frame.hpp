// The result custguard-extract writes to its standard output, and its strict reader.
//
//   "CGX" version(1 byte)                      version 1
//   { tag(1 byte) length(u32 LE) value }...    records, each tag at most once
//   tag end, length 0                          last; nothing may follow
//
// Tags: doc_type u8, pages u32, pages_without_text u32, readable u8 (0/1), reason and
// encoding UTF-8 text, text_bytes u64, findings detector_count x u64, error text (the
// helper's environment failed, e.g. Ghostscript missing: then no other record but end),
// members u32 and members_without_text u32 (containers; optional, absent means 0).
// The whole result is at most max_frame_bytes; anything else is malformed, and a
// malformed result is a failed scan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "custguard/scan/document.hpp"

namespace custguard::scan::frame {

inline constexpr std::uint8_t version = 2;  // 2: the sensitive detector and edm
inline constexpr std::size_t max_frame_bytes = 16 * 1024;
inline constexpr std::size_t max_text_field = 4096;  // reason, error
inline constexpr std::size_t max_encoding = 64;
inline constexpr std::size_t max_edm_detectors = 16;
inline constexpr std::size_t max_edm_name = 64;

// What the helper reports: a scan, or an error about its environment.
using Result = tl::expected<DocumentScan, std::string>;

std::string encode(const Result& result);

// nullopt-like failure: unexpected(<why the bytes are malformed>) in the outer expected.
tl::expected<Result, std::string> decode(std::string_view bytes);

}  // namespace custguard::scan::frame
