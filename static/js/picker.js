// The inventory picker of the template page: browse an endpoint's VM folders, search VMs by
// name, pick one, and fill the "add a VM" form from what vCenter says about it.
// Talks to labs' JSON views (labs/views.py: endpoint_inventory, endpoint_vm); the form
// itself is a plain POST with Django's CSRF token.
"use strict";

(() => {
  const picker = document.getElementById("picker");
  const form = document.getElementById("vm-add-form");
  if (!picker || !form) return;

  const readJSON = (id) => JSON.parse(document.getElementById(id)?.textContent || "null");
  const networks = readJSON("template-networks") || [];
  const picked = new Set(readJSON("picked-morefs") || []);
  const postedNics = readJSON("posted-nics") || [];
  const storeKey = `nestlab-picker-path-${picker.dataset.endpoint}`;

  const crumbs = picker.querySelector(".picker-crumbs ul");
  const list = picker.querySelector(".picker-list");
  const status = picker.querySelector(".picker-status");
  const searchForm = picker.querySelector(".picker-search");
  const searchInput = searchForm.querySelector("input[name=search]");
  const nicRows = form.querySelector(".nic-rows");
  const submit = form.querySelector("button[type=submit]");
  const field = (name) => form.elements.namedItem(name);
  const fact = (name) => form.querySelector(`[data-fact=${name}]`);

  let current = { path: "", search: "" };

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== false && value != null) node.setAttribute(key, value === true ? "" : value);
    }
    node.append(...children.filter((child) => child != null));
    return node;
  };

  const say = (text, isError = false) => {
    status.textContent = text;
    status.classList.toggle("error-text", isError);
  };

  async function getJSON(url) {
    let response;
    try {
      response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    } catch (error) {
      throw new Error("The portal did not answer; check your connection and try again.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (!response.ok || data === null) {
      throw new Error(data?.error || `The portal could not ask vCenter (HTTP ${response.status}).`);
    }
    return data;
  }

  // Browsing

  async function browse(path, search = "") {
    say(search ? `Searching for “${search}”…` : "Loading…");
    list.replaceChildren();
    const params = new URLSearchParams();
    if (path) params.set("path", path);
    if (search) params.set("search", search);
    let data;
    try {
      data = await getJSON(`${picker.dataset.inventoryUrl}?${params}`);
    } catch (error) {
      if (path && !search && sessionStorage.getItem(storeKey) === path) {
        // A remembered folder that is gone (renamed, deleted): start again from the top.
        sessionStorage.removeItem(storeKey);
        return browse("");
      }
      say(error.message, true);
      return;
    }
    current = { path: data.path, search: data.search };
    sessionStorage.setItem(storeKey, data.path);
    searchInput.value = data.search;
    showCrumbs(data.breadcrumbs, data.search);
    showItems(data.items, Boolean(data.search));
    if (data.search) {
      const where = data.breadcrumbs[data.breadcrumbs.length - 1].name;
      const count = data.items.length;
      say(count ? `${count} VM${count === 1 ? "" : "s"} named like “${data.search}” in ${where} and below.`
                : `No VM named like “${data.search}” in ${where} or below.`);
    } else {
      say(data.items.length ? "" : "This folder is empty.");
    }
  }

  function showCrumbs(trail, search) {
    const items = trail.map((crumb, index) => {
      const last = index === trail.length - 1 && !search;
      return el("li", {}, last ? crumb.name : el("a", { href: "#", onclick: go(crumb.path) }, crumb.name));
    });
    if (search) items.push(el("li", {}, `Search: “${search}”`));
    crumbs.replaceChildren(...items);
  }

  const go = (path) => (event) => {
    event.preventDefault();
    browse(path);
  };

  const KIND_WORDS = { folder: "Folder", vm: "VM", template: "Template", vapp: "vApp" };

  function showItems(items, searching) {
    list.replaceChildren(
      ...items.map((item) => {
        const kind = el("span", { class: `kind kind-${item.kind}` }, KIND_WORDS[item.kind] || item.kind);
        const where = searching ? el("small", { class: "muted item-path" }, parentOf(item.path)) : null;
        if (item.kind === "folder") {
          return el("li", {}, el("button", { type: "button", class: "picker-item", onclick: () => browse(item.path) },
            kind, el("span", { class: "item-name" }, item.name), where));
        }
        if (item.kind === "vm" || item.kind === "template") {
          const already = picked.has(item.moref);
          return el("li", {}, el("button", {
            type: "button",
            class: "picker-item",
            disabled: already,
            "data-moref": item.moref,
            onclick: () => pick(item.moref),
          }, kind, el("span", { class: "item-name" }, item.name), where,
          already ? el("small", { class: "muted" }, "in the template") : null));
        }
        return el("li", {}, el("span", { class: "picker-item inert" }, kind, el("span", { class: "item-name" }, item.name)));
      }),
    );
  }

  const parentOf = (path) => path.split("/").slice(0, -1).join("/") || "/";

  // Picking

  const roleFrom = (name) =>
    name.toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40) || "vm";

  const POWER_WORDS = { poweredOn: "powered on", poweredOff: "powered off", suspended: "suspended" };

  async function pick(moref, { restoring = false } = {}) {
    say(restoring ? "" : "Reading the VM from vCenter…");
    let vm;
    try {
      vm = await getJSON(picker.dataset.vmUrl.replace("MOREF", encodeURIComponent(moref)));
    } catch (error) {
      say(error.message, true);
      return;
    }
    say("");
    for (const item of list.querySelectorAll(".picker-item")) {
      item.classList.toggle("picked", item.dataset.moref === vm.moref);
    }
    field("source_moref").value = vm.moref;
    field("source_name").value = vm.name;
    field("source_path").value = vm.path;
    fact("name").textContent = vm.name;
    const memory = vm.memory_mb >= 1024 ? `${+(vm.memory_mb / 1024).toFixed(1)} GB` : `${vm.memory_mb} MB`;
    fact("summary").textContent = [
      vm.path,
      `${vm.num_cpu} vCPU`,
      `${memory} memory`,
      vm.disk_gb ? `${vm.disk_gb} GB disk` : null,
      `nested HV ${vm.nested_hv ? "on" : "off"}`,
      POWER_WORDS[vm.power_state] || vm.power_state,
    ].filter(Boolean).join(" · ");
    const warning = fact("warning");
    const warnings = [];
    if (vm.power_state !== "poweredOff") {
      warnings.push(`It is ${POWER_WORDS[vm.power_state] || vm.power_state}: it must be off when you publish ("Prepare the VMs…" powers it off after asking).`);
    }
    if (!vm.nested_hv) {
      warnings.push("Nested virtualization is off: if it runs ESXi, tick \"Needs nested hardware virtualization\" and \"Prepare the VMs…\" turns it on.");
    }
    warning.hidden = warnings.length === 0;
    warning.textContent = warnings.join(" ");
    field("cpu_override").placeholder = `${vm.num_cpu} (as in vCenter)`;
    field("memory_mb_override").placeholder = `${vm.memory_mb} (as in vCenter)`;
    if (!restoring) {
      field("role").value = roleFrom(vm.name);
      field("nested_hv_required").checked = vm.nested_hv;
      field("cpu_override").value = "";
      field("memory_mb_override").value = "";
      for (const error of form.querySelectorAll(".form-error, .field-error")) error.remove();
      for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    }
    showNics(vm.nics, restoring ? postedNics : []);
    form.hidden = false;
    if (!restoring) {
      form.scrollIntoView({ behavior: "smooth", block: "start" });
      field("role").focus({ preventScroll: true });
    }
  }

  function showNics(nics, chosen) {
    submit.disabled = false;
    if (!networks.length) {
      nicRows.replaceChildren(el("p", { class: "form-error" }, "The template has no network yet: add one under Networks first."));
      submit.disabled = true;
      return;
    }
    if (!nics.length) {
      nicRows.replaceChildren(el("p", { class: "form-error" }, "This VM has no network adapter; add one in vCenter first."));
      submit.disabled = true;
      return;
    }
    nicRows.replaceChildren(
      ...nics.map((nic, index) => {
        const wanted = chosen[index] || networks[0];
        const select = el("select", { name: "nic_network", "aria-label": `Network of ${nic.label}` },
          ...networks.map((name) => el("option", { value: name, selected: name === wanted }, name)));
        return el("label", { class: "nic-row" },
          el("span", {}, nic.label, " ", el("small", { class: "muted" }, nic.network ? `now on ${nic.network}` : "not connected")),
          select);
      }),
    );
  }

  form.querySelector("[data-action=cancel]").addEventListener("click", () => {
    form.hidden = true;
    picker.scrollIntoView({ behavior: "smooth", block: "start" });
  });

  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    browse(current.path, searchInput.value.trim());
  });

  browse(sessionStorage.getItem(storeKey) || "");
  if (form.dataset.restore && field("source_moref").value) pick(field("source_moref").value, { restoring: true });
})();
