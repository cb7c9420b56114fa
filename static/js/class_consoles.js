// The class's consoles (templates/labs/class_consoles.html): one small read-only console per lab,
// of the VM the instructor chose, each its own observe session through the portal's relay.
import { closeReason, connectViewer, openSession } from "./console_core.js";

const root = document.querySelector("[data-class-consoles]");
const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;

async function watch(tile) {
  const screen = tile.querySelector("[data-tile-screen]");
  const state = tile.querySelector("[data-tile-state]");
  let session;
  try {
    session = await openSession(tile.dataset.openUrl, "observe", csrf);
  } catch (error) {
    state.textContent = error.message;
    return;
  }
  const rfb = connectViewer(screen, session, { viewOnly: true, scale: true });
  rfb.addEventListener("connect", () => {
    state.textContent = "Live";
    tile.dataset.connected = "";
  });
  rfb.addEventListener("disconnect", async () => {
    delete tile.dataset.connected;
    state.textContent = await closeReason(root.dataset.sessionUrl, session);
  });
  window.addEventListener("pagehide", () => rfb.disconnect());
}

root.querySelectorAll("[data-tile][data-open-url]").forEach(watch);
