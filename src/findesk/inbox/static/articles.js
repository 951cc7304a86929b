// findesk knowledge base editor: a live preview of the body as it will be published (sanitised by
// the server, the only place that renders it). The page works without this file: its Preview
// button sends the form and the server shows the same preview.
(() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content;
  const form = document.getElementById("article-form");
  const preview = document.getElementById("article-preview");
  if (!csrf || !form || !preview) return;
  const body = form.elements.namedItem("body");
  const format = form.elements.namedItem("body_format");
  form.querySelector(".preview-button")?.setAttribute("hidden", "");
  preview.setAttribute("aria-live", "polite");

  let sent = 0;
  let shown = 0;
  let timer = null;

  async function refresh() {
    const number = ++sent;
    const data = new URLSearchParams({ body: body.value, body_format: format.value });
    try {
      const response = await fetch(preview.dataset.previewUrl, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        body: data,
      });
      if (response.status === 401) { window.location = "/login"; return; }
      if (!response.ok || number < shown) return;
      const { html } = await response.json();
      if (number < shown) return; // a later request already answered
      shown = number;
      // The server sanitised it to the contract's few tags; the page's CSP forbids scripts too.
      preview.innerHTML = html;
      preview.dataset.state = "fresh";
    } catch {
      preview.dataset.state = "stale";
    }
  }

  function schedule() {
    preview.dataset.state = "pending";
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }
  body.addEventListener("input", schedule);
  format.addEventListener("change", schedule);
})();
