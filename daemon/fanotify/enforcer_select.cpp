#include "daemon/fanotify/enforcer_select.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <sys/fanotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "daemon/fanotify/unique_fd.hpp"

namespace custguard::daemon {

namespace {

std::string active_lsms() {
    std::ifstream in("/sys/kernel/security/lsm");
    std::string s;
    std::getline(in, s);
    return s;
}

int silent_print(enum libbpf_print_level, const char*, va_list) { return 0; }

// Whether `cap` is in this process's effective set (capget: one word, no libcap). When
// the set cannot be read, report it present, so nothing is blamed on it.
bool has_capability(unsigned cap) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) return true;
    return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

// Loading LSM programs takes CAP_SYS_ADMIN, or CAP_BPF together with CAP_PERFMON.
bool can_load_lsm_programs() {
    constexpr unsigned k_cap_perfmon = 38, k_cap_bpf = 39;  // older headers lack the names
    return has_capability(CAP_SYS_ADMIN) || (has_capability(k_cap_bpf) && has_capability(k_cap_perfmon));
}

}  // namespace

ProbeResult probe_bpf_lsm() {
    std::string lsms = active_lsms();
    bool listed = false;
    for (std::size_t pos = 0; pos <= lsms.size();) {
        std::size_t end = lsms.find(',', pos);
        if (end == std::string::npos) end = lsms.size();
        if (lsms.compare(pos, end - pos, "bpf") == 0) listed = true;
        pos = end + 1;
    }
    if (!lsms.empty() && !listed)
        return {false, "bpf is not in the kernel's active LSM list (" + lsms + ")"};

    // libbpf would print its own diagnostics to stderr; we report one sentence instead.
    auto old = libbpf_set_print(silent_print);
    int btf_id = libbpf_find_vmlinux_btf_id("file_open", BPF_LSM_MAC);
    libbpf_set_print(old);
    if (btf_id < 0)
        return {false, std::string("the kernel has no BTF for lsm/file_open (") + std::strerror(-btf_id) + ")"};

    const bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_LSM_MAC,
                .attach_btf_id = static_cast<__u32>(btf_id));
    UniqueFd prog(bpf_prog_load(BPF_PROG_TYPE_LSM, "cg_probe", "GPL", insns, 2, &opts));
    if (!prog) {
        const int err = errno;
        // The kernel says EPERM for both; without the capabilities, that is the reason.
        if (err == EPERM && !can_load_lsm_programs())
            return {false, "loading a BPF LSM program was refused: the process lacks CAP_SYS_ADMIN (or CAP_BPF "
                           "with CAP_PERFMON); give them to custguardd (the shipped unit does)"};
        return {false, std::string("loading a BPF LSM program failed (") + std::strerror(err) +
                           (listed ? "; bpf is listed as an LSM but the kernel refuses trampoline programs)" : ")")};
    }
    UniqueFd link(bpf_link_create(prog.get(), 0, BPF_LSM_MAC, nullptr));
    if (!link)
        return {false, std::string("attaching a BPF LSM program failed (") + std::strerror(errno) + ")"};
    return {true, "a BPF LSM program for file_open loaded and attached"};
}

ProbeResult probe_fanotify(const char* probe_path) {
    UniqueFd fd(::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_TID,
                                O_RDONLY | O_LARGEFILE | O_CLOEXEC));
    if (!fd)
        return {false, std::string("fanotify_init with permission events failed (") + std::strerror(errno) + ")"};
    // An inode mark on a directory without FAN_ONDIR/FAN_EVENT_ON_CHILD: accepted like the
    // enforcer's marks, but no open anywhere waits for this group that nobody reads.
    if (::fanotify_mark(fd.get(), FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_OPEN_PERM, AT_FDCWD, probe_path) != 0)
        return {false, std::string("fanotify marks for FAN_OPEN_PERM failed (") + std::strerror(errno) + ")"};
    return {true, "fanotify permission events (FAN_OPEN_PERM) work"};
}

tl::expected<EnforcerSelection, std::string> select_enforcer(policy::EnforcerChoice requested) {
    using policy::EnforcerChoice;
    switch (requested) {
    case EnforcerChoice::none:
        return EnforcerSelection{EnforcerChoice::none, "none: requested; accesses are observed only, nothing is enforced"};
    case EnforcerChoice::bpf_lsm: {
        auto p = probe_bpf_lsm();
        if (!p.available) return tl::unexpected("enforcer bpf-lsm requested but unavailable: " + p.reason);
        return EnforcerSelection{EnforcerChoice::bpf_lsm, "bpf-lsm: requested; " + p.reason};
    }
    case EnforcerChoice::fanotify: {
        auto p = probe_fanotify();
        if (!p.available) return tl::unexpected("enforcer fanotify requested but unavailable: " + p.reason);
        return EnforcerSelection{EnforcerChoice::fanotify, "fanotify: requested; " + p.reason};
    }
    case EnforcerChoice::automatic:
        break;
    }
    auto bpf = probe_bpf_lsm();
    if (bpf.available) return EnforcerSelection{EnforcerChoice::bpf_lsm, "bpf-lsm: " + bpf.reason};
    auto fan = probe_fanotify();
    if (fan.available)
        return EnforcerSelection{EnforcerChoice::fanotify, "fanotify: BPF LSM is unavailable (" + bpf.reason + ")"};
    return EnforcerSelection{EnforcerChoice::none, "none (observe only): BPF LSM is unavailable (" + bpf.reason +
                                                       ") and so is fanotify (" + fan.reason + ")"};
}

}  // namespace custguard::daemon
