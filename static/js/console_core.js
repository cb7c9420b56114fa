// What every console on a page does (docs/console.md): open a session through the API, connect
// noVNC to the portal's relay, and say why a console closed (the session's close_reason).
import RFB from "../vendor/novnc/core/rfb.js";

export async function openSession(openUrl, mode, csrf) {
  const response = await fetch(openUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: JSON.stringify({ mode }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || "The console did not open.");
  return body;
}

export function connectViewer(target, session, { viewOnly, scale }) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const rfb = new RFB(target, scheme + location.host + session.websocket_path, { wsProtocols: ["binary"], shared: true });
  rfb.viewOnly = viewOnly;
  rfb.scaleViewport = scale;
  return rfb;
}

export async function closeReason(sessionUrl, session) {
  const response = await fetch(sessionUrl + session.id + "/", { credentials: "same-origin" });
  const record = response.ok ? await response.json() : {};
  return record.close_reason || "The console closed.";
}
