// tests/unit/proxy/jobs/test_reader_pool: the batch commands' reader threads: every user from
// `first` on reaches the queue exactly once, and a reader that throws turns that user into a
// failure instead of losing it or leaving the consumer waiting.
#include "proxy/jobs/user_pipeline.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <stdexcept>

using sg::proxy::item;

TEST_CASE("reader_pool: every user from `first` on, once, on several threads", "[jobs]") {
    std::vector<std::string> users;
    for (int i = 0; i < 200; ++i) users.push_back("u" + std::to_string(i));
    sg::proxy::item_queue queue(4);  // smaller than the list: readers block and resume
    sg::proxy::reader_pool pool(queue, users, 10, 3, [&](std::size_t k) {
        return item{users[k], std::nullopt, "", {}, k};
    });
    std::multiset<std::size_t> seen;
    while (auto it = queue.pop()) {
        CHECK(it->user_id == users[it->index]);
        seen.insert(it->index);
    }
    pool.join();
    CHECK(seen.size() == 190);
    CHECK(std::set<std::size_t>(seen.begin(), seen.end()).size() == 190);
    CHECK(*seen.begin() == 10);
}

TEST_CASE("reader_pool: a reader's exception is that user's failure", "[jobs]") {
    const std::vector<std::string> users{"a", "b", "c"};
    sg::proxy::item_queue queue(8);
    sg::proxy::reader_pool pool(queue, users, 0, 2, [&](std::size_t k) -> item {
        if (users[k] == "b") throw std::runtime_error("corrupt pack");
        return item{users[k], std::nullopt, "", {}, k};
    });
    std::map<std::string, std::string> failures;
    std::size_t n = 0;
    while (auto it = queue.pop()) {  // ends: both producers finished despite the throw
        ++n;
        failures[it->user_id] = it->failure;
    }
    CHECK(n == 3);
    CHECK(failures["a"].empty());
    CHECK(failures["b"] == "reader error: corrupt pack");
    CHECK(failures["c"].empty());
}
