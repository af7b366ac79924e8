// proxy/common/thread_name: names the calling thread (at most 15 bytes; top -H, perf and
// /proc/<pid>/task/*/comm show it), so that CPU use can be told apart by role.
#pragma once

#include <pthread.h>

namespace sg::proxy {

inline void name_this_thread(const char* name) {
    (void)::pthread_setname_np(::pthread_self(), name);
}

}  // namespace sg::proxy
