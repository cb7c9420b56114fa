// The console page (templates/labs/console.html, docs/console.md): opens a console session
// through the API, connects noVNC to the portal's relay, and offers Ctrl-Alt-Del, Type text,
// scale to fit, full screen, reconnect and, for an observing instructor, Take control.
import { closeReason, connectViewer, openSession as open } from "./console_core.js";
import keysyms from "../vendor/novnc/core/input/keysymdef.js";

const root = document.querySelector("[data-console]");
const screen = root.querySelector("[data-console-screen]");
const statusLine = root.querySelector("[data-console-status]");
const errorLine = root.querySelector("[data-console-error]");
const offPanel = root.querySelector("[data-console-off]");
const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
const RETURN = 0xff0d;
const TAB = 0xff09;

let mode = root.dataset.mode;
let rfb = null;
let session = null;
let closing = false;

function status(text) {
  statusLine.textContent = text;
}

function showError(text) {
  errorLine.textContent = text || "";
  errorLine.hidden = !text;
}

async function openSession() {
  showError("");
  status("Opening…");
  try {
    session = await open(root.dataset.openUrl, mode, csrf);
  } catch (error) {
    status("Not open");
    showError(error.message);
    if (/powered off/.test(error.message)) offPanel.hidden = false;
    return;
  }
  closing = false;
  rfb = connectViewer(screen, session, {
    viewOnly: mode === "observe",
    scale: root.querySelector("[data-console-scale]").checked,
  });
  rfb.focusOnClick = true;
  rfb.addEventListener("connect", () => {
    status(mode === "observe" ? "Connected, read-only" : "Connected");
    screen.dataset.connected = "";
    if (mode !== "observe") rfb.focus();
  });
  rfb.addEventListener("disconnect", onDisconnect);
}

async function onDisconnect() {
  delete screen.dataset.connected;
  rfb = null;
  if (closing) return;
  status("Closed");
  // The relay records why it closed before it closes: read it from the session.
  if (session) {
    const reason = await closeReason(root.dataset.sessionUrl, session);
    showError(reason);
    if (/powered off/.test(reason)) offPanel.hidden = false;
  }
}

function reconnect() {
  if (rfb) {
    closing = true;
    rfb.disconnect();
  }
  openSession();
}

function keysymFor(character) {
  if (character === "\n") return RETURN;
  if (character === "\t") return TAB;
  return keysyms.lookup(character.codePointAt(0));
}

async function typeText(text) {
  const progress = root.querySelector("[data-console-type-progress]");
  const characters = Array.from(text).slice(0, Number(root.dataset.typeLimit));
  progress.max = characters.length;
  progress.value = 0;
  progress.hidden = false;
  status(`Typing ${characters.length} characters…`);
  for (let index = 0; index < characters.length && rfb; index += 1) {
    const keysym = keysymFor(characters[index]);
    rfb.sendKey(keysym, null, true);
    rfb.sendKey(keysym, null, false);
    if (index % 32 === 31) {
      progress.value = index + 1;
      await new Promise((resolve) => setTimeout(resolve, 15)); // let the guest keep up
    }
  }
  progress.value = characters.length;
  progress.hidden = true;
  status(rfb ? "Connected" : "Closed");
  root.dataset.typed = String(characters.length);
}

root.querySelector("[data-console-cad]").addEventListener("click", () => rfb && rfb.sendCtrlAltDel());
root.querySelector("[data-console-reconnect]").addEventListener("click", reconnect);
root.querySelector("[data-console-fullscreen]").addEventListener("click", () => screen.requestFullscreen?.());
root.querySelector("[data-console-scale]").addEventListener("change", (event) => {
  if (rfb) rfb.scaleViewport = event.target.checked;
});
const takeControl = root.querySelector("[data-console-take-control]");
if (takeControl) {
  takeControl.addEventListener("click", () => {
    mode = "control";
    takeControl.hidden = true;
    root.querySelector("[data-console-mode]")?.remove();
    root.querySelector("[data-console-cad]").hidden = false;
    root.querySelector("[data-console-type-open]").hidden = false;
    reconnect();
  });
}
const dialog = root.querySelector("[data-console-type-dialog]");
root.querySelector("[data-console-type-open]").addEventListener("click", () => {
  dialog.showModal();
  root.querySelector("[data-console-type-text]").focus();
});
dialog.addEventListener("close", () => {
  if (dialog.returnValue === "type") typeText(root.querySelector("[data-console-type-text]").value);
});
window.addEventListener("pagehide", () => {
  closing = true;
  if (rfb) rfb.disconnect();
});

// A VM that is off: wait for it to run (Power on here, or anyone else), then open its console.
async function whenOn() {
  const response = await fetch(root.dataset.labUrl, { credentials: "same-origin" });
  const lab = response.ok ? await response.json() : null;
  const vm = lab && lab.vms.find((row) => String(row.id) === root.dataset.vmId);
  if (vm && vm.power_state === "poweredOn") {
    offPanel.hidden = true;
    openSession();
  } else {
    setTimeout(whenOn, 3000);
  }
}

if (offPanel.hidden) openSession();
else whenOn();
