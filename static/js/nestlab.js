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

// The manual editor's preview is htmx's (templates/courses/template_detail.html): the same
// Markdown rendering students see, refreshed while typing. When the server cannot answer, say so.
function previewUnavailable(event) {
  const preview = event.detail.target;
  if (preview?.matches(".manual-preview")) {
    preview.textContent = "The preview is not available right now; saving still works.";
  }
}
document.addEventListener("htmx:responseError", previewUnavailable);
document.addEventListener("htmx:sendError", previewUnavailable);
