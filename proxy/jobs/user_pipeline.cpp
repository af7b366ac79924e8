// proxy/jobs/user_pipeline: see the header.
#include "proxy/jobs/user_pipeline.hpp"

#include <algorithm>
#include <exception>

namespace sg::proxy {

std::optional<git::storage_reader> open_v1_storage(const config::config& cfg, std::string& why) {
    if (cfg.v1_data_dir.empty()) {
        why = "v1_data_dir is not set in the config";
        return std::nullopt;
    }
    auto reader = git::storage_reader::open(cfg.v1_data_dir);
    if (!reader) {
        why = "cannot open v1 storage " + cfg.v1_data_dir + ": " + reader.error().message;
        return std::nullopt;
    }
    return std::move(*reader);
}

void item_queue::push(item it) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(it));
    not_empty_.notify_one();
}

std::optional<item> item_queue::pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty() || producers_ == 0; });
    if (items_.empty()) return std::nullopt;
    item it = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return it;
}

bool item_queue::empty() {
    std::lock_guard lock(mu_);
    return items_.empty();
}

void item_queue::add_producer() {
    std::lock_guard lock(mu_);
    ++producers_;
}

void item_queue::producer_done() {
    std::lock_guard lock(mu_);
    --producers_;
    not_empty_.notify_all();
}

reader_pool::reader_pool(item_queue& queue, std::span<const std::string> users, std::size_t first,
                         int readers, read_fn read_one)
    : queue_(queue), users_(users), read_one_(std::move(read_one)), next_(first) {
    const int n = std::max(1, readers);
    for (int i = 0; i < n; ++i) queue_.add_producer();
    threads_.resize(static_cast<std::size_t>(n));
    for (auto& t : threads_) {
        t.start("sg-read", task_kind::batch_reader, [this](const std::stop_token&) { run(); });
    }
}

void reader_pool::run() {
    // Whatever happens, this producer ends: the consumer must not wait for it for ever.
    struct done_guard {
        item_queue& q;
        ~done_guard() { q.producer_done(); }
    } guard{queue_};
    for (std::size_t k; (k = next_.fetch_add(1)) < users_.size();) {
        item it;
        try {
            it = read_one_(k);
        } catch (const std::exception& e) {
            it = item{users_[k], std::nullopt, std::string("reader error: ") + e.what(), {}, k};
        }
        queue_.push(std::move(it));
    }
}

void reader_pool::join() {
    for (auto& t : threads_) t.join();
}

}  // namespace sg::proxy
