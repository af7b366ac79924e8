// proxy/jobs/user_pipeline: what the batch commands (migrate, reconcile) share to read many users
// from v1 storage on several threads while one thread talks to Dolt: the per-user item, a
// bounded single-consumer queue; the rows are derived on the reader threads (a PyYAML-exact
// parse and dump of every version's frontmatter), off the single thread the database waits on.
#pragma once

#include "adapters/dolt/rows.hpp"
#include "adapters/git/reader.hpp"
#include "adapters/v1/model.hpp"
#include "config/config.hpp"
#include "proxy/common/worker_thread.hpp"

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace sg::proxy {

// v1 storage for a batch command: nullopt with `why` set when v1_data_dir is unset or cannot be
// opened.
std::optional<git::storage_reader> open_v1_storage(const config::config& cfg, std::string& why);

// What a reader hands the consumer for one user.
struct item {
    std::string user_id;
    std::optional<dolt::user_rows> rows;  // derived from v1; empty: unchanged (skipped) or failed
    std::string failure;                  // set when the user could not be read
    std::vector<std::string> warnings;    // what the reader skipped or found odd
    std::size_t index = 0;                // position in the list of users being worked on
};

// A bounded single-consumer queue: readers block when the consumer falls behind, so memory stays
// flat however many users there are.
class item_queue {
public:
    explicit item_queue(std::size_t capacity) : capacity_(capacity) {}
    void push(item it);
    // nullopt once every producer finished and the queue is empty.
    std::optional<item> pop();
    bool empty();
    void add_producer();
    void producer_done();

private:
    std::mutex mu_;
    std::condition_variable not_full_, not_empty_;
    std::deque<item> items_;
    std::size_t capacity_;
    int producers_ = 0;
};

// The batch commands' readers: `readers` threads (worker_thread, named sg-read) take the users
// from `first` on, one at a time in list order, make each one's item with read_one(index) and
// push it into `queue`, whose producers they are. An exception out of read_one becomes that
// user's failure (counted and reported like any unreadable user), never a lost user or a
// consumer waiting for ever. The destructor joins.
class reader_pool {
public:
    using read_fn = std::function<item(std::size_t index)>;
    reader_pool(item_queue& queue, std::span<const std::string> users, std::size_t first,
                int readers, read_fn read_one);
    ~reader_pool() { join(); }
    reader_pool(const reader_pool&) = delete;
    reader_pool& operator=(const reader_pool&) = delete;
    void join();

private:
    void run();
    item_queue& queue_;
    std::span<const std::string> users_;
    read_fn read_one_;
    std::atomic<std::size_t> next_;
    std::vector<worker_thread> threads_;
};

}  // namespace sg::proxy
