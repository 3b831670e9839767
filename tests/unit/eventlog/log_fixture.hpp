#pragma once
// Shared helpers for eventlog tests: sample events and a log in a temp dir.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "scimsync/eventlog/file_log.hpp"
#include "support/test_support.hpp"

namespace scimsync::testing {

// A deterministic event whose data identifies it by `n` (about `bytes` long when encoded).
eventlog::event sample_event(std::uint64_t n, std::size_t bytes = 120);
std::vector<eventlog::event> sample_batch(std::uint64_t first, std::size_t count,
                                          std::size_t bytes = 120);

std::unique_ptr<eventlog::file_log> open_log(eventlog::file_log_options options);
eventlog::file_log_options log_options(const std::filesystem::path& dir,
                                       eventlog::durability mode = eventlog::durability::none);

// Every durable event from `first` on.
std::vector<eventlog::event> read_all(const eventlog::log& l, eventlog::seq_no first = {1});

std::vector<std::filesystem::path> segment_files(const std::filesystem::path& dir);
void flip_byte(const std::filesystem::path& file, std::uint64_t offset);
void truncate_file(const std::filesystem::path& file, std::uint64_t size);
void append_bytes(const std::filesystem::path& file, const std::string& bytes);

}  // namespace scimsync::testing
