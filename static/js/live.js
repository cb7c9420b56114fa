/* Nestlab live status: keeps a page in step with the server over a WebSocket.
 *
 * No build step, no dependencies. A page opts in with an element carrying
 * data-live="/ws/labs/<id>/" (or /ws/courses/<id>/). The protocol is in docs/websocket.md:
 * full state first, then deltas with a per-object seq; on a gap we ask for a resync, and
 * after a reconnect the server sends the full state anyway.
 *
 * What it updates (all optional, found by data attributes):
 *   [data-lab-id="7"]                 a lab (page or table row); inside it, [data-field=...]:
 *       state, error, hours_used, vms_on, running
 *   [data-vm-id="3"]                  a VM; inside it [data-field=power_state|guest_ip|overall_status]
 *   [data-operation-for-lab="7"]      where the lab's running operation is shown; inside it
 *       progress (a <progress>), step, state, kind; the element is hidden when none runs
 *   [data-busy-disable][data-lab="7"] buttons disabled while lab 7 has an operation running
 *                                     (without data-lab: any lab on the page)
 *   [data-fragment-url]               re-fetched (GET, same origin) and swapped in when the
 *                                     part it shows changed: snapshot trees, class tables
 *   [data-live-status]                shows "Live", "Reconnecting…"
 * Failures and notices appear as toasts.
 */
(function () {
  "use strict";

  const root = document.querySelector("[data-live]");
  if (!root || !("WebSocket" in window)) return;

  const path = root.getAttribute("data-live");
  const seqs = new Map();            // "lab:7" -> last seq applied
  const activeOps = new Map();       // lab id -> operation id running
  let socket = null;
  let attempt = 0;
  let closedByServer = false;

  // ---- small DOM helpers --------------------------------------------------------------

  function all(selector, scope) {
    return Array.from((scope || document).querySelectorAll(selector));
  }

  function setField(scope, name, value) {
    all(`[data-field="${name}"]`, scope).forEach((el) => {
      if (el.tagName === "PROGRESS") {
        el.value = Number(value) || 0;
        el.setAttribute("aria-valuenow", String(el.value));
      } else {
        el.textContent = value === null || value === undefined ? "" : String(value);
      }
      el.dataset.value = String(value);
    });
  }

  const POWER_WORDS = {poweredOn: "On", poweredOff: "Off", suspended: "Suspended", missing: "Missing"};
  const STATE_WORDS = {
    provisioning: "Provisioning", ready: "Ready", busy: "Busy", error: "Error",
    deleting: "Deleting", deleted: "Deleted", expired: "Expired",
    queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled",
  };

  function status(text, level) {
    all("[data-live-status]").forEach((el) => {
      el.textContent = text;
      el.dataset.level = level;
    });
  }

  function toast(text, level) {
    let box = document.getElementById("toasts");
    if (!box) {
      box = document.createElement("div");
      box.id = "toasts";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      document.body.appendChild(box);
    }
    const item = document.createElement("article");
    item.className = `toast toast-${level || "info"}`;
    item.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => item.remove());
    item.appendChild(close);
    box.appendChild(item);
    if (level !== "error") setTimeout(() => item.remove(), 8000);
  }

  const refreshing = new WeakMap();
  function refreshFragments(kind) {
    all(`[data-fragment-url]${kind ? `[data-fragment="${kind}"]` : ""}`).forEach((el) => {
      if (refreshing.get(el)) return;
      refreshing.set(el, true);
      fetch(el.getAttribute("data-fragment-url"), {credentials: "same-origin", headers: {"X-Requested-With": "live"}})
        .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
        .then((html) => {
          el.innerHTML = html;
          applyBusy();
        })
        .catch(() => {})
        .finally(() => refreshing.delete(el));
    });
  }

  // ---- applying state -------------------------------------------------------------------

  function fresh(key, seq) {
    if (seq === 0 || seq === undefined) return true;          // full states and notices
    const last = seqs.get(key);
    if (last !== undefined && seq <= last) return false;      // stale or duplicate
    if (last !== undefined && seq > last + 1) resync();       // something was missed
    seqs.set(key, seq);
    return true;
  }

  function applyLab(lab, seq) {
    if (!fresh(`lab:${lab.id}`, seq)) return;
    all(`[data-lab-id="${lab.id}"]`).forEach((scope) => {
      setField(scope, "state", STATE_WORDS[lab.state] || lab.state);
      scope.dataset.state = lab.state;
      setField(scope, "error", lab.error);
      setField(scope, "hours_used", Number(lab.hours_used).toFixed(1));
      setField(scope, "running", lab.running ? "Running" : "Stopped");
      if (lab.vms_on !== undefined) setField(scope, "vms_on", `${lab.vms_on}/${lab.vms_total}`);
    });
  }

  function applyVm(vm, seq) {
    if (!fresh(`vm:${vm.id}`, seq)) return;
    all(`[data-vm-id="${vm.id}"]`).forEach((scope) => {
      setField(scope, "power_state", POWER_WORDS[vm.power_state] || vm.power_state);
      scope.dataset.power = vm.power_state;
      setField(scope, "guest_ip", vm.guest_ip || "—");
      setField(scope, "overall_status", vm.overall_status);
    });
  }

  function applyOperation(op, seq) {
    if (!fresh(`op:${op.id}`, seq)) return;
    const labId = op.lab;
    const running = op.state === "queued" || op.state === "running";
    if (labId) {
      if (running) activeOps.set(String(labId), op.id);
      else if (activeOps.get(String(labId)) === op.id) activeOps.delete(String(labId));
    }
    all(`[data-operation-for-lab="${labId}"]`).forEach((panel) => {
      panel.hidden = !running;
      panel.dataset.operationId = op.id;
      panel.dataset.state = op.state;
      setField(panel, "progress", op.progress);
      setField(panel, "step", op.step || STATE_WORDS[op.state]);
      setField(panel, "state", STATE_WORDS[op.state] || op.state);
      setField(panel, "kind", op.kind.replace(/_/g, " "));
    });
    all(`[data-operation-id="${op.id}"]`).forEach((scope) => {
      if (scope.hasAttribute("data-operation-for-lab")) return;
      setField(scope, "progress", op.progress);
      setField(scope, "step", op.step);
      setField(scope, "state", STATE_WORDS[op.state] || op.state);
      setField(scope, "error", op.error);
      scope.dataset.state = op.state;
    });
    if (op.state === "failed") toast(op.error || "The operation failed.", "error");
    if (!running) refreshFragments("history");
    applyBusy();
  }

  function applyBusy() {
    all("[data-busy-disable]").forEach((el) => {
      const lab = el.getAttribute("data-lab");
      const busy = lab ? activeOps.has(lab) : activeOps.size > 0;
      if (busy) {
        if (!el.disabled) el.dataset.wasEnabled = "1";
        el.disabled = true;
        el.title = "Wait: an operation is running on this lab.";
      } else if (el.dataset.wasEnabled) {
        el.disabled = false;
        el.removeAttribute("title");
        delete el.dataset.wasEnabled;
      }
    });
  }

  function applyFull(message) {
    activeOps.clear();
    if (message.type === "lab.full") {
      seqs.clear();
      applyLab(message.lab, message.seq);
      message.vms.forEach((vm) => applyVm(vm, vm.seq));
      if (message.operation) applyOperation(message.operation, message.operation.seq);
      else all(`[data-operation-for-lab="${message.lab.id}"]`).forEach((panel) => (panel.hidden = true));
      refreshFragments("snapshots");
    } else if (message.type === "course.full") {
      seqs.clear();
      const known = new Set(all("[data-lab-id]").map((el) => el.getAttribute("data-lab-id")));
      message.labs.forEach((lab) => {
        applyLab(lab, lab.seq);
        if (lab.operation) applyOperation(lab.operation, lab.operation.seq);
      });
      if (message.labs.some((lab) => !known.has(String(lab.id)))) refreshFragments("labs");
    }
    applyBusy();
  }

  function handle(message) {
    switch (message.type) {
      case "lab.full":
      case "course.full":
        applyFull(message);
        break;
      case "lab.state":
        if (!document.querySelector(`[data-lab-id="${message.lab.id}"]`)) refreshFragments("labs");
        applyLab(message.lab, message.seq);
        break;
      case "vm.state":
        applyVm(message.vm, message.seq);
        break;
      case "operation.progress":
        applyOperation(message.operation, message.seq);
        break;
      case "snapshot.changed":
        if (fresh(`lab:${message.lab}`, message.seq)) refreshFragments("snapshots");
        break;
      case "notice":
        toast(message.text, message.level);
        break;
      default:
        break;
    }
  }

  // ---- the connection ----------------------------------------------------------------

  function resync() {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({type: "resync"}));
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${window.location.host}${path}`);
    socket.addEventListener("open", () => {
      attempt = 0;
      status("Live", "ok");
    });
    socket.addEventListener("message", (event) => {
      try {
        handle(JSON.parse(event.data));
      } catch (error) {
        console.error("Nestlab live update failed", error);
        resync();
      }
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4401 || event.code === 4403) {
        closedByServer = true;
        status(event.code === 4401 ? "Signed out: reload the page" : "Not allowed", "bad");
        return;
      }
      attempt += 1;
      const delay = Math.min(30000, 500 * 2 ** Math.min(attempt, 6)) * (0.8 + Math.random() * 0.4);
      status(`Reconnecting… (${Math.round(delay / 1000)} s)`, "warn");
      setTimeout(() => {
        if (!closedByServer) connect();
      }, delay);
    });
  }

  window.NestlabLive = {resync, state: () => ({seqs, activeOps})};
  status("Connecting…", "warn");
  connect();
})();
