// custguard's Cockpit page. Everything goes through org.custguard1 on the system bus with
// cockpit.dbus, as the logged-in user; custguardd decides what that user may see and do
// (custguard.dbus(7)). Held jobs arrive by signal (JobHeld after Subscribe, PropertiesChanged), not by
// polling. Only the DOM API is used to build the page (textContent, never innerHTML), so
// names from the bus cannot inject markup; charts are SVG drawn here.
"use strict";

const _ = cockpit.gettext;
const BUS = "org.custguard1";
const PATH = "/org/custguard1";
const IFACE = "org.custguard1";
const PROPS = "org.freedesktop.DBus.Properties";
const DAY_MS = 24 * 3600 * 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const READ_EVENTS = ["access_allowed", "access_audited"];

const client = cockpit.dbus(BUS, { bus: "system" });

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
}

function row(cells) {
    const tr = el("tr");
    for (const c of cells) {
        const td = el("td");
        if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined ? "" : String(c);
        tr.appendChild(td);
    }
    return tr;
}

function show_error(ex) {
    const p = $("error");
    p.textContent = ex && ex.message ? ex.message : String(ex);
    p.hidden = false;
}

function clear_error() { $("error").hidden = true; }

function time_text(ms) { return new Date(ms).toLocaleString(cockpit.language); }

function call(method, signature, args) {
    return client.call(PATH, IFACE, method, args, { type: signature });
}

function get_property(name) {
    return client.call(PATH, PROPS, "Get", [IFACE, name], { type: "ss" }).then(reply => reply[0].v);
}

// ---- held print jobs -----------------------------------------------------------------

// (sssususta{su}): job, printer, user, uid, title, pages, client, held_at, detector hits.
// The title is not shown: it can name a customer.
function held_row(job) {
    const [id, printer, user, , , pages, clnt, held_at, hits] = job;
    const categories = Object.keys(hits).sort()
        .map(k => k + ": " + hits[k])
        .join(", ");
    const reason = el("input");
    reason.type = "text";
    reason.className = "reason";
    reason.placeholder = _("Reason");
    const approve = el("button", _("Approve"), "approve");
    const reject = el("button", _("Reject"), "reject");
    approve.type = reject.type = "button";
    approve.addEventListener("click", () => decide(id, "ApproveJob", reason.value));
    reject.addEventListener("click", () => {
        if (reason.value.trim() === "") {
            show_error(_("Give a reason for rejecting the job."));
            return;
        }
        decide(id, "RejectJob", reason.value);
    });
    const decision = el("span");
    decision.append(reason, approve, reject);
    const tr = row([id, user, printer, clnt, pages, categories, time_text(held_at * 1000), decision]);
    tr.dataset.job = id;
    tr.dataset.shown = String(Date.now());  // bench/cockpit measures the signal path with it
    return tr;
}

function decide(id, method, text) {
    clear_error();
    call(method, "ss", [id, text])
        .then(() => {
            const tr = document.querySelector('#held tr[data-job="' + CSS.escape(id) + '"]');
            if (tr) tr.remove();
            update_held_empty();
            return load_changes();  // the decision, with who made it
        })
        .catch(show_error);
}

function update_held_empty() {
    $("held-empty").hidden = $("held").tBodies[0].rows.length > 0;
}

function add_held(job) {
    const body = $("held").tBodies[0];
    if (body.querySelector('tr[data-job="' + CSS.escape(job[0]) + '"]')) return;
    body.appendChild(held_row(job));
    update_held_empty();
}

// The property is the truth: rows of jobs no longer held (decided elsewhere) go, new
// ones come.
function set_held(jobs) {
    const ids = new Set(jobs.map(j => j[0]));
    for (const tr of Array.from($("held").tBodies[0].rows))
        if (!ids.has(tr.dataset.job)) tr.remove();
    jobs.forEach(add_held);
    update_held_empty();
}

// ---- access history --------------------------------------------------------------------

function day_key(ms) {
    const d = new Date(ms);
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
}

// A bar chart of [label, value] pairs; the bars and labels are SVG elements with
// attributes, no inline style (Cockpit's content security policy).
function bar_chart(svg, pairs) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const width = 360, bar_h = 18, gap = 4, label_w = 110;
    const max = Math.max(1, ...pairs.map(p => p[1]));
    svg.setAttribute("viewBox", "0 0 " + width + " " + Math.max(bar_h, pairs.length * (bar_h + gap)));
    svg.setAttribute("width", width);
    svg.setAttribute("height", Math.max(bar_h, pairs.length * (bar_h + gap)));
    pairs.forEach(([label, value], i) => {
        const y = i * (bar_h + gap);
        const text = document.createElementNS(SVG_NS, "text");
        text.setAttribute("x", 0);
        text.setAttribute("y", y + bar_h - 5);
        text.setAttribute("class", "chart-label");
        text.textContent = label;
        const rect = document.createElementNS(SVG_NS, "rect");
        rect.setAttribute("x", label_w);
        rect.setAttribute("y", y);
        rect.setAttribute("height", bar_h);
        rect.setAttribute("width", Math.max(1, (width - label_w - 40) * value / max));
        rect.setAttribute("class", "bar");
        const count = document.createElementNS(SVG_NS, "text");
        count.setAttribute("x", label_w + Math.max(1, (width - label_w - 40) * value / max) + 4);
        count.setAttribute("y", y + bar_h - 5);
        count.setAttribute("class", "chart-value");
        count.textContent = String(value);
        svg.append(text, rect, count);
    });
    svg.dataset.bars = String(pairs.length);
}

function count_by(rows, key) {
    const m = new Map();
    for (const r of rows) m.set(key(r), (m.get(key(r)) || 0) + 1);
    return m;
}

function date_usec(input, end_of_day) {
    if (!input.value) return 0;
    const d = new Date(input.value + "T00:00:00");
    return (d.getTime() + (end_of_day ? DAY_MS - 1 : 0)) * 1000;
}

// (tssssss): time_usec, event, zone, user, client, path, message; newest first.
function load_history() {
    clear_error();
    const args = [$("f-zone").value.trim(), $("f-user").value.trim(), $("f-client").value.trim(), "",
        date_usec($("f-since"), false), date_usec($("f-until"), true), 5000];
    return call("GetHistory", "ssssttu", args)
        .then(([rows, truncated]) => {
            const reads = rows.filter(r => READ_EVENTS.includes(r[1]));
            const denials = rows.filter(r => r[1] === "access_denied");
            const per_day = count_by(reads, r => day_key(r[0] / 1000));
            bar_chart($("chart-days"), Array.from(per_day).sort());
            const per_user = Array.from(count_by(reads, r => r[3])).sort((a, b) => b[1] - a[1]).slice(0, 10);
            bar_chart($("chart-users"), per_user);
            bar_chart($("chart-denials"), Array.from(count_by(denials, r => day_key(r[0] / 1000))).sort());
            const bulk = $("bulk");
            bulk.replaceChildren(...rows.filter(r => r[1] === "bulk_read")
                .map(r => el("li", time_text(r[0] / 1000) + " — " + r[6])));
            const body = $("history").tBodies[0];
            body.replaceChildren(...rows.slice(0, 200)
                .map(r => row([time_text(r[0] / 1000), r[1], r[2], r[3], r[4], r[5]])));
            $("history-summary").textContent = cockpit.format(
                truncated ? _("$0 records (more matched; narrow the filter)") : _("$0 records"), rows.length);
        })
        .catch(show_error);
}

// ---- zones ---------------------------------------------------------------------------

// (sasssasas): name, paths, sensitivity, on_violation, allowed users and %groups, clients.
function set_zones(zones) {
    $("zones").tBodies[0].replaceChildren(...zones.map(z => {
        const tr = row([z[0], z[1].join(", "), z[4].join(", "), z[5].join(", ")]);
        tr.dataset.zone = z[0];
        return tr;
    }));
    const select = $("z-zone");
    const chosen = select.value;
    select.replaceChildren(...zones.map(z => {
        const o = el("option", z[0]);
        o.value = z[0];
        return o;
    }));
    if (zones.some(z => z[0] === chosen)) select.value = chosen;
}

// (ssstsst): zone, user, client, expires_at, reason, granted_by, granted_at.
function load_grants() {
    return call("GetGrants", "s", [""])
        .then(([grants]) => {
            $("grants").tBodies[0].replaceChildren(...grants.map(g => {
                const revoke = el("button", _("Revoke"), "revoke-grant");
                revoke.type = "button";
                revoke.addEventListener("click", () =>
                    change(g[1] ? call("RevokeGrant", "ss", [g[0], g[1]]) : call("RevokeClientGrant", "ss", [g[0], g[2]])));
                return row([g[0], g[1] || g[2], time_text(g[3] * 1000), g[4], g[5], revoke]);
            }));
        });
}

// Who changed what: the admin_change records (their user is the one who made the change).
function load_changes() {
    return call("GetHistory", "ssssttu", ["", "", "", "admin_change", 0, 0, 20])
        .then(([rows]) => {
            $("changes").tBodies[0].replaceChildren(...rows.map(r => row([time_text(r[0] / 1000), r[3], r[6]])));
        });
}

function change(promise) {
    clear_error();
    return promise
        .then(() => Promise.all([load_grants(), load_changes()]))
        .catch(show_error);
}

function setup_zone_form() {
    const zone = () => $("z-zone").value;
    const user = () => $("z-user").value.trim();
    $("z-allow").addEventListener("click", () => change(call("AllowUser", "ss", [zone(), user()])));
    $("z-revoke").addEventListener("click", () => change(call("RevokeUser", "ss", [zone(), user()])));
    $("z-grant").addEventListener("click", () => {
        const seconds = Math.round(Number($("z-hours").value) * 3600);
        change(call("AddGrant", "ssxs", [zone(), user(), seconds, $("z-reason").value]));
    });
}

// ---- start -------------------------------------------------------------------------------

function on_properties_changed(path, iface, signal, [changed_iface, changed]) {
    if (changed_iface !== IFACE) return;
    if (changed.HeldJobs) set_held(changed.HeldJobs.v);
    if (changed.Zones) set_zones(changed.Zones.v);
}

function start() {
    cockpit.translate();
    setup_zone_form();
    $("history-filter").addEventListener("submit", ev => {
        ev.preventDefault();
        load_history();
    });
    // Subscribe first, then read: a job held in between is in one or the other. JobHeld is
    // sent only to connections that called Subscribe, and only the jobs this user may decide.
    client.subscribe({ path: PATH, interface: IFACE, member: "JobHeld" }, (path, iface, signal, [job]) => add_held(job));
    client.subscribe({ path: PATH, interface: PROPS, member: "PropertiesChanged" }, on_properties_changed);
    Promise.all([
        call("Subscribe", "", []).then(() => get_property("HeldJobs")).then(set_held),
        get_property("Zones").then(set_zones),
        load_grants(),
        load_changes(),
        load_history(),
    ])
        .then(() => { document.body.dataset.ready = "1"; })
        .catch(show_error);
}

document.addEventListener("DOMContentLoaded", start);
