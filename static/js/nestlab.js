// Small helpers for every page: confirmations and the lab manual's live preview. No build step.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
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
          const html = await response.text(); // sanitized by the server (portal.markdown)
          if (ask === latest) preview.innerHTML = html || '<p class="muted">No manual yet.</p>';
        } catch (error) {
          if (ask === latest) preview.textContent = "The preview is not available right now; saving still works.";
        }
      }, 400);
    });
  }
});
