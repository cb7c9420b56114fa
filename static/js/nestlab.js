// Small helpers for every page: confirmations, dates and the lab manual's live preview. No build step.
"use strict";

// Dates (<time data-date>, portal/templatetags/dates.py) in the one format of the page's date
// pickers: the browser's, which no page can change. The server wrote ISO 8601, what stays
// without JavaScript.
const pickerDate = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "2-digit", day: "2-digit" });
document.addEventListener("DOMContentLoaded", () => {
  for (const element of document.querySelectorAll("time[data-date]")) {
    const [year, month, day] = element.dateTime.split("-").map(Number);
    if (year && month && day) element.textContent = pickerDate.format(new Date(year, month - 1, day));
  }
});

// Asked here, so the server, which asks on a page of its own when nobody did, goes ahead.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (!form) return;
  if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  else if (form.elements.confirmed) form.elements.confirmed.value = "on";
});

// The manual editor: the same Markdown rendering students see, refreshed while typing.
document.addEventListener("DOMContentLoaded", () => {
  for (const editor of document.querySelectorAll(".manual-editor[data-preview-url]")) {
    const source = editor.querySelector("textarea");
    const preview = editor.querySelector(".manual-preview");
    const token = editor.closest("form")?.querySelector("input[name=csrfmiddlewaretoken]")?.value;
    if (!source || !preview || !token) continue;
    let timer = null;
    let latest = 0;
    source.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const ask = ++latest;
        const body = new FormData();
        body.append("text", source.value);
        try {
          const response = await fetch(editor.dataset.previewUrl, {
            method: "POST",
            body,
            headers: { "X-CSRFToken": token },
            credentials: "same-origin",
          });
          if (!response.ok) throw new Error(await response.text());
          const html = await response.text(); // sanitized by the server (core.markdown)
          if (ask === latest) preview.innerHTML = html || '<p class="muted">No manual yet.</p>';
        } catch (error) {
          if (ask === latest) preview.textContent = "The preview is not available right now; saving still works.";
        }
      }, 400);
    });
  }
});
