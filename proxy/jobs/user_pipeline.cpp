// proxy/jobs/user_pipeline: see the header.
#include "proxy/jobs/user_pipeline.hpp"

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

}  // namespace sg::proxy
