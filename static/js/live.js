/* Nestlab live status: keeps a page in step with the server over WebSockets, pushed, never polled.
 *
 * No build step, no dependencies. base.html loads it on every page; it does nothing unless an
 * element carries data-live="/ws/labs/<id>/" or data-live="/ws/courses/<id>/" (one per page).
 * The protocol is docs/websocket.md: the full state first, then deltas with a seq per object;
 * on a gap we ask for a resync; after a reconnect (with backoff) the server sends the full
 * state anyway. Everything received goes into a small model (labs, VMs, operations) and is
 * applied to whatever markup is on the page, again after a fragment is swapped in.
 *
 * MARKUP CONTRACT (what the server renders and this file keeps up to date)
 *
 * Objects. A [data-field] belongs to the NEAREST enclosing object element, never to an outer
 * one, so objects may nest (a history row inside a lab page). Do not put a field of one object
 * directly inside another object's element without wrapping it in its own object element: e.g.
 * a lab's [data-field=state] directly inside a [data-operation-id] row is read as the
 * operation's state, and an operation's inside a [data-lab-id] row as the lab's.
 *   [data-lab-id="7"]             a lab. Fields: state (in words), error (the words; a
 *                                 data-error-fallback is shown for a lab in error without
 *                                 them; data-truncate-words="24" shortens), hours_used,
 *                                 running, vms_on ("on/total"). Gets data-state (raw).
 *   [data-vm-id="3"]              a VM. Fields: power_state, guest_ip, overall_status (in
 *                                 words; the field gets data-value with the raw status).
 *                                 Gets data-power (raw power state).
 *   [data-operation-for-lab="7"]  the panel of the operation keeping lab 7 busy: its own, or
 *                                 a clone being made from it. Fields: kind, state, progress
 *                                 (a <progress> or text), step, busy_reason. Gets
 *                                 data-operation-id, data-operation-lab, data-state, class
 *                                 "waiting" while its step waits for vCenter capacity; hidden
 *                                 when none runs (an ended one shows its outcome briefly).
 *                                 The server's data-operation-id/-lab/data-state/data-actor/
 *                                 data-cancel-requested say what runs before the first message.
 *                                 Inside: form[data-cancel-form] with input[name=operation],
 *                                 shown to whoever may cancel (its actor, or an admin).
 *   [data-operation-id="381"]     an operation elsewhere (history rows, the operation page).
 *                                 Fields: state, progress, step, error. Gets data-state.
 *
 * Behaviour.
 *   [data-busy-disable][data-lab="7"]  disabled exactly while lab 7 is busy, judged from the
 *                                 data (operations on it or cloning it), whatever the server
 *                                 rendered. Without data-lab: while any lab on the page is
 *                                 busy. Not for controls disabled for other reasons.
 *   [data-while-actionable="7"]   hidden once lab 7 is deleting, deleted or expired, or once
 *                                 this person may no longer act on it (lab.full can_act false).
 *   [data-read-only-note="7"]     shown exactly while this person may see lab 7 but not act on it.
 *   [data-snapshots-taken="7"]    how many snapshots lab 7 keeps (the baseline not counted).
 *   [data-snapshot-tree="7"]      lab 7's tree: li[data-snapshot-id], li.current for "you are
 *                                 here"; re-fetched when the ids or the current one differ.
 *   [data-fragment="snapshots|history|labs|guide|grid"][data-fragment-url]  re-fetched (GET,
 *                                 same origin) and swapped in when what it shows changed: the
 *                                 snapshot tree, the recent operations (an operation started or
 *                                 ended), the class table (labs came or went), a lab's guide
 *                                 panel and the class's progress grid (a "lab.guide" message).
 *                                 Checkboxes keep their ticks, text inputs what is being
 *                                 typed (matched by name) and details[id] stay open across a swap.
 *   [data-summary="labs|running|busy|without_lab"]  the class table's heading, in words
 *                                 ("2 labs", "1 running", "0 busy", " · 1 without a lab", the
 *                                 last hidden at 0; counted from the data and the table rows).
 *   [data-live-status]            "Connecting…", "Live", "Reconnecting…" (data-level ok|warn|bad).
 *   data-user="<id>" and data-admin on the [data-live] element: who looks (for Cancel).
 *   .flash-success                on a lab page loaded while an operation runs (the message
 *                                 that announced it): gets .flash-past and how it ended.
 * Operations that fail or are cancelled, and notices, appear as toasts (#toasts).
 */
(function () {
  "use strict";

  const root = document.querySelector("[data-live]");
  if (!root || !("WebSocket" in window) || window.NestlabLive) return;

  const ME = Number(root.getAttribute("data-user")) || null;
  const ADMIN = root.hasAttribute("data-admin");
  const MAIN_PATH = root.getAttribute("data-live");
  const PAGE_LAB = (MAIN_PATH.match(/^\/ws\/labs\/(\d+)\/$/) || [])[1] || null;
  const COURSE_PAGE = /^\/ws\/courses\/\d+\/$/.test(MAIN_PATH);
  // The page of an operation that is not a lab's (ws/operations/<id>/): its fields follow the
  // operation, and the page reloads once it ends, to show the results the server renders.
  const OPERATION_PAGE = (MAIN_PATH.match(/^\/ws\/operations\/(\d+)\/$/) || [])[1] || null;

  // The words shown come with the messages (labs/realtime.py: state_label, step_label,
  // busy_label, ...), so this script repeats none of the server's wording or rules.
  const CAPACITY_WAIT = "Waiting for vCenter capacity";
  const TOO_MANY_RETRY_MS = 60000;  // after a 4429 (docs/websocket.md)
  let reloading = false;
  const ACTIVE = new Set(["queued", "running"]);
  const FINISHED_LAB = new Set(["deleting", "deleted", "expired"]);
  const SCOPES = "[data-lab-id],[data-vm-id],[data-operation-id],[data-operation-for-lab]";
  const ENDED_SHOWN_MS = 2500;   // an ended operation's outcome stays in its panel this long
  const MAX_TOASTS = 4;

  // ---- what we know -------------------------------------------------------------------

  const labs = new Map();        // "7" -> lab payload, with receivedAt
  const vms = new Map();         // "3" -> VM payload
  const labVms = new Map();      // "7" -> Set of its VM ids, once a full state listed them
  const ops = new Map();         // "381" -> operation payload: active ones, and ended ones still shown
  const ended = new Set();       // operation ids known to have ended (never seeded again)
  const cancelAsked = new Set(); // operation ids someone asked to cancel (the server said so)
  const readOnly = new Set();    // lab ids this person may see but no longer act on (lab.full can_act)
  const seqs = new Map();        // "lab:7", "vm:3", "op:381" -> last seq applied
  const toasted = new Set();
  const followers = new Map();   // lab id -> Connection following a clone made from this page's lab

  const key = (id) => (id === null || id === undefined ? "" : String(id));
  const active = (op) => ACTIVE.has(op.state);

  // ---- small DOM helpers ----------------------------------------------------------------

  function all(selector, scope) {
    return Array.from((scope || document).querySelectorAll(selector));
  }

  /** The [data-field=name] elements of this object, not of objects nested in it. */
  function fields(scope, name) {
    return all(`[data-field="${name}"]`, scope).filter((el) => el.parentElement.closest(SCOPES) === scope);
  }

  function setField(scope, name, text, raw) {
    fields(scope, name).forEach((el) => {
      if (el.tagName === "PROGRESS") {
        el.value = Number(text) || 0;
      } else {
        const value = text === null || text === undefined ? "" : String(text);
        if (el.textContent !== value) el.textContent = value;
      }
      if (raw !== undefined) el.setAttribute("data-value", raw === null ? "" : String(raw));
    });
  }

  function status(text, level, title) {
    all("[data-live-status]").forEach((el) => {
      el.textContent = text;
      el.setAttribute("data-level", level);
      if (title) el.title = title;
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
    while (box.children.length >= MAX_TOASTS) box.firstElementChild.remove();
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
    // A failure stays on a lab page until dismissed; on the class table (many labs) it goes after a while.
    const stay = level !== "error" ? 8000 : COURSE_PAGE ? 30000 : 0;
    if (stay) setTimeout(() => item.remove(), stay);
  }

  /** The success message of the action that led to this page announced the operation running
   *  at load: once that ends, the message says how it ended instead of going stale. */
  let announced = null;

  function announcedEnded(op) {
    if (key(op.id) !== announced) return;
    announced = null;
    all(".flash-success").forEach((flash) => {
      flash.classList.add("flash-past");
      const outcome = document.createElement("strong");
      outcome.className = "flash-outcome";
      outcome.textContent = ` ${op.outcome_label}`;
      flash.appendChild(outcome);
    });
  }

  // ---- fragments: parts of the page the server renders again ------------------------------

  const fetching = new Map();    // element -> whether to fetch again when this fetch is done

  function refreshFragment(el) {
    if (fetching.has(el)) {
      fetching.set(el, true);
      return;
    }
    fetching.set(el, false);
    fetch(el.getAttribute("data-fragment-url"), {credentials: "same-origin", headers: {"X-Requested-With": "live"}})
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(`HTTP ${response.status}`))))
      .then((html) => swap(el, html))
      .catch((error) => console.warn("Nestlab: a part of the page could not be refreshed", error))
      .finally(() => {
        const again = fetching.get(el);
        fetching.delete(el);
        if (again) refreshFragment(el);
      });
  }

  function refreshFragments(kind) {
    all(`[data-fragment="${kind}"][data-fragment-url]`).forEach(refreshFragment);
  }

  function checkboxKey(input) {
    return `${input.name}=${input.value}`;
  }

  /** Swap in new markup, keeping ticked checkboxes, text being typed (a guide's answers) and
   *  the focus, then apply what we know. */
  function swap(el, html) {
    const ticks = new Map(all("input[type=checkbox]", el).map((input) => [checkboxKey(input), input.checked]));
    const typed = new Map(all("input[type=text]", el)
      .filter((input) => input.name && input.value !== input.defaultValue)
      .map((input) => [input.name, input.value]));
    const opened = new Set(all("details[id][open]", el).map((details) => details.id));
    const focused = el.contains(document.activeElement) ? document.activeElement : null;
    const focusKey = focused && focused.matches("input[type=checkbox]") ? checkboxKey(focused)
      : focused && focused.matches("input[type=text]") ? focused.name : null;
    el.innerHTML = html;
    all("input[type=checkbox]", el).forEach((input) => {
      const ticked = ticks.get(checkboxKey(input));
      if (ticked !== undefined) input.checked = ticked;
      if (focusKey && checkboxKey(input) === focusKey) input.focus();
    });
    all("input[type=text]", el).forEach((input) => {
      if (typed.has(input.name)) input.value = typed.get(input.name);
      if (focusKey && input.name === focusKey) input.focus();
    });
    opened.forEach((id) => {
      const details = document.getElementById(id);
      if (details && el.contains(details)) details.open = true;
    });
    if (window.htmx) window.htmx.process(el);
    renderAll();
  }

  // ---- rendering the model --------------------------------------------------------------

  function hoursNow(lab) {
    const hours = Number(lab.hours_used) || 0;
    return lab.running ? hours + (Date.now() - lab.receivedAt) / 3600000 : hours;
  }

  function vmCounts(labId) {
    const ids = labVms.get(labId);
    const lab = labs.get(labId);
    if (ids) {
      let on = 0;
      ids.forEach((id) => {
        if ((vms.get(id) || {}).power_state === "poweredOn") on += 1;
      });
      return {on, total: ids.size};
    }
    return lab && lab.vms_on !== undefined ? {on: lab.vms_on, total: lab.vms_total} : null;
  }

  function truncateWords(text, count) {
    const words = text.split(/\s+/).filter(Boolean);
    return count && words.length > count ? `${words.slice(0, count).join(" ")} …` : text;
  }

  function renderLab(labId) {
    const lab = labs.get(labId);
    if (!lab) return;
    all(`[data-lab-id="${labId}"]`).forEach((scope) => {
      scope.setAttribute("data-state", lab.state);
      setField(scope, "state", lab.state_label);
      fields(scope, "error").forEach((el) => {
        let text = lab.error || (lab.state === "error" ? el.getAttribute("data-error-fallback") || "" : "");
        text = truncateWords(text, Number(el.getAttribute("data-truncate-words")) || 0);
        if (el.textContent !== text) el.textContent = text;
      });
      setField(scope, "hours_used", hoursNow(lab).toFixed(1));
      setField(scope, "running", lab.running ? "Running" : "Stopped");
      const counts = vmCounts(labId);
      if (counts) setField(scope, "vms_on", `${counts.on}/${counts.total}`);
    });
    const counts = vmCounts(labId);
    if (counts) {
      const power = counts.total && counts.on === counts.total ? "all_on" : counts.on ? "some_on" : "all_off";
      all(`[data-lab-power-for="${labId}"]`).forEach((el) => el.setAttribute("data-lab-power", power));
    }
    const finished = FINISHED_LAB.has(lab.state);
    all(`[data-while-actionable="${labId}"]`).forEach((el) => {
      el.hidden = finished || readOnly.has(labId);
    });
    all(`[data-read-only-note="${labId}"]`).forEach((el) => {
      el.hidden = !readOnly.has(labId);
    });
  }

  function renderVm(vmId) {
    const vm = vms.get(vmId);
    if (!vm) return;
    all(`[data-vm-id="${vmId}"]`).forEach((scope) => {
      scope.setAttribute("data-power", vm.power_state);
      // The words come with the message (labs.models.LabVM.power_label, health_label).
      setField(scope, "power_state", vm.power_label);
      setField(scope, "guest_ip", vm.guest_ip || "");
      setField(scope, "overall_status", vm.health_label, vm.overall_status || "");
    });
  }

  function busy(labId) {
    for (const op of ops.values()) {
      if (active(op) && (key(op.lab) === labId || key(op.source_lab) === labId)) return true;
    }
    return false;
  }

  function anyBusy() {
    for (const op of ops.values()) if (active(op)) return true;
    return false;
  }

  /** The operation a lab's panel shows: an active one (its own first), else one just ended. */
  function panelOperation(labId) {
    let best = null;
    let rank = -1;
    ops.forEach((op) => {
      const own = key(op.lab) === labId;
      if (!own && key(op.source_lab) !== labId) return;
      const score = (active(op) ? 4 : 0) + (own ? 2 : 0) + (op.seeded ? 0 : 1);
      if (score > rank || (score === rank && op.id > best.id)) {
        best = op;
        rank = score;
      }
    });
    return best;
  }

  /** Why a lab's buttons are off: its own operation's words, or a clone's for the lab it copies. */
  function busyReason(labId, op) {
    return key(op.lab) === labId ? op.busy_label : op.source_busy_label;
  }

  function mayCancel(op) {
    return ADMIN || (ME !== null && op.actor === ME && !(op.lab && readOnly.has(key(op.lab))));
  }

  function renderPanel(panel) {
    const labId = panel.getAttribute("data-operation-for-lab");
    const op = panelOperation(labId);
    if (op && op.seeded) return;     // the server's markup is right until a message says more
    if (!op) {
      panel.hidden = true;
      panel.classList.remove("waiting");
      ["data-operation-id", "data-operation-lab", "data-state", "data-cancel-requested"].forEach((name) =>
        panel.removeAttribute(name));
      return;
    }
    const id = key(op.id);
    panel.hidden = false;
    panel.setAttribute("data-operation-id", id);
    panel.setAttribute("data-operation-lab", key(op.lab));
    panel.setAttribute("data-state", op.state);
    setField(panel, "kind", op.kind_label || op.kind);
    setField(panel, "state", op.state_label);
    setField(panel, "progress", op.progress);
    setField(panel, "step", op.step_label);
    setField(panel, "busy_reason", busyReason(labId, op));
    panel.classList.toggle("waiting", active(op) && (op.step || "").startsWith(CAPACITY_WAIT));
    const asked = active(op) && cancelAsked.has(id);
    panel.toggleAttribute("data-cancel-requested", asked);
    all("form[data-cancel-form]", panel).forEach((form) => {
      form.hidden = !(active(op) && mayCancel(op) && !asked);
      const input = form.querySelector("input[name=operation]");
      if (input) input.value = id;
    });
  }

  function renderPanels(labIds) {
    all("[data-operation-for-lab]").forEach((panel) => {
      if (!labIds || labIds.has(panel.getAttribute("data-operation-for-lab"))) renderPanel(panel);
    });
  }

  function renderOperationRows(op) {
    all(`[data-operation-id="${op.id}"]`).forEach((scope) => {
      if (scope.hasAttribute("data-operation-for-lab")) return;
      scope.setAttribute("data-state", op.state);
      setField(scope, "state", op.state_label);
      setField(scope, "progress", op.progress);
      setField(scope, "step", op.step_label);
      setField(scope, "error", op.error);
    });
  }

  function renderBusy() {
    const anything = anyBusy();
    all("[data-busy-disable]").forEach((el) => {
      const labId = el.getAttribute("data-lab");
      const isBusy = labId ? busy(labId) : anything;
      if (el.disabled !== isBusy) el.disabled = isBusy;
      if (isBusy) el.title = "Wait: an operation is running on this lab.";
      else if (el.title.startsWith("Wait:")) el.removeAttribute("title");
    });
  }

  function renderSummary() {
    if (!COURSE_PAGE || !all("[data-summary]").length || !labs.size) return;
    let count = 0;
    let running = 0;
    let busyLabs = 0;
    labs.forEach((lab, labId) => {
      if (lab.state === "deleted") return;
      count += 1;
      if (lab.running) running += 1;
      if (busy(labId)) busyLabs += 1;
    });
    const without = all("[data-fragment=labs] tr.no-lab").length;
    const say = (name, text, hide) => all(`[data-summary="${name}"]`).forEach((el) => {
      if (el.textContent !== text) el.textContent = text;
      el.hidden = Boolean(hide);
    });
    say("labs", `${count} lab${count === 1 ? "" : "s"}`);
    say("running", `${running} running`);
    say("busy", `${busyLabs} busy`);
    say("without_lab", ` · ${without} without a lab`, without === 0);
  }

  function renderAll() {
    labs.forEach((_, labId) => renderLab(labId));
    vms.forEach((_, vmId) => renderVm(vmId));
    renderPanels(null);
    ops.forEach(renderOperationRows);
    renderBusy();
    renderSummary();
  }

  // ---- applying messages ----------------------------------------------------------------

  /** A delta: apply unless stale; a skipped number means we missed one: resync. */
  function fresh(name, seq, connection) {
    if (!seq) return true;
    const last = seqs.get(name);
    if (last !== undefined && seq <= last) return false;
    if (last !== undefined && seq > last + 1) connection.resync();
    seqs.set(name, seq);
    return true;
  }

  /** A full state's object: apply unless a newer delta already arrived. */
  function freshFull(name, seq) {
    const last = seqs.get(name);
    if (last !== undefined && seq < last) return false;
    seqs.set(name, seq);
    return true;
  }

  function storeLab(lab) {
    labs.set(key(lab.id), {...lab, receivedAt: Date.now()});
  }

  function storeVm(vm) {
    vms.set(key(vm.id), vm);
    const ids = labVms.get(key(vm.lab));
    if (ids) ids.add(key(vm.id));
  }

  function labName(labId) {
    const lab = labs.get(key(labId));
    return lab ? lab.name : `Lab #${labId}`;
  }

  /** An operation's new state; ``delta`` when it just happened (not from a full state). */
  function operationChanged(op, delta) {
    const id = key(op.id);
    if (!op.lab) {                  // not a lab's (e.g. an admin's connection check): only its outcome
      if (OPERATION_PAGE === id) {
        renderOperationRows(op);
        if (!active(op) && !reloading) {
          reloading = true;
          window.location.reload();
        }
        return;
      }
      if (delta && op.state === "failed" && !toasted.has(id)) {
        toasted.add(id);
        toast(`${op.kind_label || op.kind} failed. ${op.error || "No reason was given."}`, "error");
      }
      return;
    }
    const before = ops.get(id);
    const touched = new Set([key(op.lab), key(op.source_lab)]);
    if (active(op)) {
      if (ended.has(id)) return;    // an older message than the one that ended it
      ops.set(id, {...op});
      if (delta && !before) refreshFragments("history");     // a new one: the history lists it
    } else {
      const wasShown = before && active(before);
      ended.add(id);
      announcedEnded(op);
      if (delta && (wasShown || !before)) {
        ops.set(id, {...op, shownUntil: Date.now() + ENDED_SHOWN_MS});
        setTimeout(() => {
          const still = ops.get(id);
          if (still && !active(still)) {
            ops.delete(id);
            renderPanels(touched);
          }
        }, ENDED_SHOWN_MS);
        if (!toasted.has(id)) {
          const where = PAGE_LAB && (key(op.lab) === PAGE_LAB || key(op.source_lab) === PAGE_LAB)
            ? "" : `${labName(op.lab)}: `;
          const what = op.kind_label || op.kind;
          if (op.state === "failed") {
            toasted.add(id);
            toast(`${where}${what} failed. ${op.error || "No reason was given."}`, "error");
          } else if (op.state === "cancelled") {
            toasted.add(id);
            toast(`${where}${what} was cancelled.`, "warning");
          }
        }
      } else {
        ops.delete(id);
      }
      refreshFragments("history");
      // Not every job says when it changed the snapshots (a build takes the baseline): look again.
      if (delta && op.kind !== "power") {
        all(`[data-snapshot-tree="${key(op.lab)}"]`).forEach(refreshFragment);
      }
    }
    renderPanels(touched);
    renderOperationRows(op);
  }

  /** Operations we took for active that a full state no longer lists ended while we were away. */
  function dropMissing(isCovered, listed) {
    ops.forEach((op, id) => {
      if (active(op) && isCovered(op) && !listed.has(id)) {
        ops.delete(id);
        ended.add(id);
        if (id === announced) announced = null;
        renderPanels(new Set([key(op.lab), key(op.source_lab)]));
        refreshFragments("history");
      }
    });
  }

  function treeMatches(box, current, snapshots) {
    const shown = all("li[data-snapshot-id]", box).map((li) => li.getAttribute("data-snapshot-id"));
    const here = box.querySelector("li.current[data-snapshot-id]");
    const ids = snapshots.map((snapshot) => key(snapshot.id));
    return shown.length === ids.length && ids.every((id) => shown.includes(id))
      && (here ? here.getAttribute("data-snapshot-id") : "") === key(current);
  }

  function snapshotsChanged(labId, current, snapshots) {
    const kept = snapshots.filter((snapshot) => !snapshot.is_baseline).length;
    all(`[data-snapshots-taken="${labId}"]`).forEach((el) => (el.textContent = String(kept)));
    all(`[data-snapshot-tree="${labId}"]`).forEach((box) => {
      if (!treeMatches(box, current, snapshots)) refreshFragment(box);
    });
  }

  function labFull(message) {
    const labId = key(message.lab.id);
    if (message.can_act === false) readOnly.add(labId);
    else readOnly.delete(labId);
    if (freshFull(`lab:${labId}`, message.seq)) {
      storeLab(message.lab);
      snapshotsChanged(labId, message.current, message.snapshots);
    }
    labVms.set(labId, new Set(message.vms.map((vm) => key(vm.id))));
    message.vms.forEach((vm) => {
      if (freshFull(`vm:${vm.id}`, vm.seq)) storeVm(vm);
    });
    const listed = new Set(message.operation ? [key(message.operation.id)] : []);
    dropMissing((op) => key(op.lab) === labId, listed);
    if (message.operation && freshFull(`op:${message.operation.id}`, message.operation.seq)) {
      operationChanged(message.operation, false);
    }
  }

  function courseFull(message) {
    const listed = new Set();
    const labIds = new Set();
    message.labs.forEach((row) => {
      const labId = key(row.id);
      labIds.add(labId);
      if (freshFull(`lab:${labId}`, row.seq)) storeLab(row);
      labVms.set(labId, new Set(row.vms.map((vm) => key(vm.id))));
      row.vms.forEach((vm) => {
        if (freshFull(`vm:${vm.id}`, vm.seq)) storeVm(vm);
      });
      if (row.operation) listed.add(key(row.operation.id));
    });
    dropMissing(() => true, listed);
    message.labs.forEach((row) => {
      if (row.operation && freshFull(`op:${row.operation.id}`, row.operation.seq)) {
        operationChanged(row.operation, false);
      }
    });
    const shown = new Set(all("[data-fragment=labs] [data-lab-id]").map((el) => el.getAttribute("data-lab-id")));
    if (shown.size !== labIds.size || [...labIds].some((id) => !shown.has(id))) refreshFragments("labs");
  }

  /** On the class table, a lab we do not know yet (a clone, a new student's lab): fetch it. */
  function unknownLab(labId, connection) {
    if (!COURSE_PAGE || labs.has(labId)) return false;
    refreshFragments("labs");
    connection.resync();
    return true;
  }

  function handle(message, connection) {
    switch (message.type) {
      case "lab.full":
      case "course.full":
        connection.resyncing = false;
        if (message.type === "lab.full") labFull(message);
        else courseFull(message);
        // After a reconnect or a resync, operations may have come and gone unseen.
        if (connection.fullStates++ > 0) ["history", "guide", "grid"].forEach(refreshFragments);
        renderAll();
        break;
      case "lab.state": {
        const lab = message.lab;
        const labId = key(lab.id);
        if (unknownLab(labId, connection) || !fresh(`lab:${labId}`, message.seq, connection)) break;
        const before = labs.get(labId);
        storeLab({...(before || {}), ...lab});
        if (COURSE_PAGE && lab.state === "deleted") refreshFragments("labs");
        if (before && before.state !== lab.state && FINISHED_LAB.has(lab.state)) refreshFragments("snapshots");
        renderLab(labId);
        renderSummary();
        break;
      }
      case "vm.state": {
        const vm = message.vm;
        if (unknownLab(key(vm.lab), connection) || !fresh(`vm:${vm.id}`, message.seq, connection)) break;
        storeVm(vm);
        // The lab's words follow its VMs' power ("Partly running"); the server sends them along.
        if (labs.has(key(vm.lab))) labs.get(key(vm.lab)).state_label = message.lab_state_label;
        renderVm(key(vm.id));
        renderLab(key(vm.lab));
        break;
      }
      case "operation.progress": {
        const op = message.operation;
        if (!fresh(`op:${op.id}`, message.seq, connection)) break;
        if (op.lab) unknownLab(key(op.lab), connection);
        operationChanged(op, true);
        renderBusy();
        renderSummary();
        break;
      }
      case "snapshot.changed":
        if (fresh(`lab:${message.lab}`, message.seq, connection)) {
          snapshotsChanged(key(message.lab), message.current, message.snapshots);
        }
        break;
      case "lab.guide":
        // A lab's guide progress changed (a check ended, a step was marked done): the guide panel
        // and the class's progress grid are rendered again by the server (labs/guide_views.py).
        if (fresh(`lab:${message.guide.lab}`, message.seq, connection)) {
          refreshFragments("guide");
          refreshFragments("grid");
        }
        break;
      case "pool.state": {
        // The course's warm pool (labs.pools): its numbers and words, in place.
        const pool = message.pool;
        all(`[data-pool="${pool.course}"]`).forEach((scope) => {
          ["ready", "building", "given_today", "target"].forEach((name) => {
            all(`[data-pool-field="${name}"]`, scope).forEach((el) => {
              el.textContent = String(pool[name]);
            });
          });
          all("[data-pool-words]", scope).forEach((el) => {
            el.textContent = pool.words;
          });
        });
        break;
      }
      case "notice":
        toast(message.text, message.level);
        break;
      case "lab.consoles": {
        // Who else is on the lab's consoles (labs.console.presence_words says it the same way).
        const parts = message.consoles.map(
          (entry) => `${entry.name} (${entry.vm}, ${entry.mode === "control" ? "can type" : "watching"})`,
        );
        const words = parts.length ? `On this lab's consoles now: ${parts.join(", ")}.` : "";
        all(`[data-lab-consoles="${message.lab}"]`).forEach((el) => {
          el.textContent = words;
          el.hidden = !words;
        });
        break;
      }
      default:
        break;
    }
    follow();
  }

  // ---- connections ----------------------------------------------------------------------

  class Connection {
    constructor(path, main) {
      this.path = path;
      this.main = main;
      this.attempt = 0;
      this.stopped = false;
      this.resyncing = false;
      this.fullStates = 0;
      this.timer = null;
      this.open();
    }

    open() {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(`${scheme}//${window.location.host}${this.path}`);
      this.socket = socket;
      this.resyncing = true;      // the server sends the full state first
      socket.addEventListener("open", () => {
        this.attempt = 0;
        if (this.main) status("Live", "ok", "Changes appear here as they happen, without reloading.");
      });
      socket.addEventListener("message", (event) => {
        if (this.socket !== socket) return;
        try {
          handle(JSON.parse(event.data), this);
        } catch (error) {
          console.error("Nestlab live update failed", error);
          this.resync();
        }
      });
      socket.addEventListener("close", (event) => {
        if (this.socket !== socket || this.stopped) return;
        if (event.code === 4401 || event.code === 4403) {
          this.stopped = true;
          if (this.main) {
            status(event.code === 4401 ? "Signed out: log in again" : "Not allowed", "bad",
              "Live updates stopped.");
          }
          return;
        }
        this.attempt += 1;
        let delay = Math.min(30000, 500 * 2 ** Math.min(this.attempt - 1, 6)) * (0.8 + Math.random() * 0.4);
        if (event.code === 4429) {
          // Too many of this person's pages are live (the notice before the close said so):
          // a place frees only when another tab closes, so ask again rarely.
          delay = TOO_MANY_RETRY_MS * (0.8 + Math.random() * 0.4);
          if (this.main) status("Too many live pages", "bad",
            `You have too many Nestlab pages open; close some tabs. Trying again in ${Math.ceil(delay / 1000)} s.`);
        } else if (this.main) {
          status("Reconnecting…", "warn", `Connection lost; trying again in ${Math.ceil(delay / 1000)} s.`);
        }
        this.timer = setTimeout(() => {
          this.timer = null;
          this.open();
        }, delay);
      });
    }

    /** Ask for the full state again; one request at a time. */
    resync() {
      if (this.resyncing || !this.socket || this.socket.readyState !== WebSocket.OPEN) return;
      this.resyncing = true;
      this.socket.send(JSON.stringify({type: "resync"}));
    }

    /** After the browser comes back online: try now rather than after the backoff. */
    retryNow() {
      if (this.stopped || !this.timer) return;
      clearTimeout(this.timer);
      this.timer = null;
      this.open();
    }

    close() {
      this.stopped = true;
      clearTimeout(this.timer);
      this.socket.close();
    }
  }

  /** A clone made from this page's lab belongs to the new lab, whose messages do not come here:
   *  follow the new lab's route while the clone runs (the lab stays busy until it ends). */
  function follow() {
    if (!PAGE_LAB) return;
    const wanted = new Set();
    ops.forEach((op) => {
      if (active(op) && key(op.source_lab) === PAGE_LAB && key(op.lab) !== PAGE_LAB) wanted.add(key(op.lab));
    });
    followers.forEach((connection, labId) => {
      if (!wanted.has(labId)) {
        connection.close();
        followers.delete(labId);
      }
    });
    wanted.forEach((labId) => {
      if (!followers.has(labId)) followers.set(labId, new Connection(`/ws/labs/${labId}/`, false));
    });
  }

  /** What the server rendered as running, so that a clone of this lab is followed at once and
   *  nothing is enabled before the first message says so. */
  function seed() {
    all("[data-operation-for-lab][data-operation-id]").forEach((panel) => {
      const state = panel.getAttribute("data-state");
      const id = panel.getAttribute("data-operation-id");
      if (!ACTIVE.has(state) || ops.has(id)) return;
      const forLab = panel.getAttribute("data-operation-for-lab");
      const lab = panel.getAttribute("data-operation-lab") || forLab;
      ops.set(id, {
        id: Number(id),
        lab: Number(lab),
        source_lab: lab !== forLab ? Number(forLab) : null,
        actor: Number(panel.getAttribute("data-actor")) || null,
        state,
        seeded: true,
      });
      if (panel.hasAttribute("data-cancel-requested")) cancelAsked.add(id);
      if (PAGE_LAB && forLab === PAGE_LAB) announced = id;
    });
  }

  seed();
  const main = new Connection(MAIN_PATH, true);
  follow();
  window.addEventListener("online", () => {
    main.retryNow();
    followers.forEach((connection) => connection.retryNow());
  });
  // Lab hours grow while a lab runs: move the number along with the clock (no request).
  setInterval(() => {
    labs.forEach((lab, labId) => {
      if (lab.running) renderLab(labId);
    });
  }, 30000);

  window.NestlabLive = {
    resync: () => main.resync(),
    state: () => ({labs, vms, ops, seqs, followers: [...followers.keys()]}),
  };
})();
