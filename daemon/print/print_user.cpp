#include "daemon/print/print_user.hpp"

#include "custguard/cups/cups_client.hpp"

namespace custguard::print {

CupsIdentity ask_cups_identity(const std::string& job_id, int timeout_ms) {
    CupsIdentity out;
    int id = 0;
    try {
        id = std::stoi(job_id);
    } catch (const std::exception&) {
        out.error = "job id '" + job_id + "' is not a number";
        return out;
    }
    auto cups = CupsClient::connect(timeout_ms);
    if (!cups) {
        out.error = cups.error();
        return out;
    }
    auto job = cups->job(id);
    if (!job) {
        out.error = job.error();
        return out;
    }
    out.job_user = job->user;
    out.destination = job->printer;  // job-printer-uri: the queue or class it was sent to
    auto dest = cups->queue(job->printer);
    if (!dest) {
        out.error = dest.error();
        return out;
    }
    out.takes_auth_info = dest->takes_auth_info();
    return out;
}

}  // namespace custguard::print
