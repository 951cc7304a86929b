// findesk inbox: live updates over Server-Sent Events, a small formatting toolbar, typing
// signals and handover notifications. Every page works without this file.
(() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content;
  const me = document.querySelector('meta[name="agent-id"]')?.content;
  if (!csrf) return; // the sign-in page

  // --- composer: contenteditable with the formatting the contract allows -------------------
  const composer = document.querySelector("form.composer");
  function setUpComposer(form) {
    const textarea = form.querySelector("textarea[name=body]");
    const toolbar = form.querySelector(".toolbar");
    if (!textarea || !toolbar || form.dataset.enhanced) return;
    form.dataset.enhanced = "1";
    const editor = document.createElement("div");
    editor.className = "editor";
    editor.contentEditable = "true";
    editor.setAttribute("role", "textbox");
    editor.setAttribute("aria-multiline", "true");
    editor.setAttribute("aria-label", "Message");
    editor.id = "reply-editor";
    textarea.hidden = true;
    textarea.insertAdjacentElement("beforebegin", editor);
    toolbar.hidden = false;
    document.execCommand("defaultParagraphSeparator", false, "p");
    toolbar.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-command]");
      if (!button) return;
      editor.focus();
      const command = button.dataset.command;
      if (command === "createLink") {
        const url = window.prompt("Link address (https://…)", "https://");
        if (url && /^(https?:|mailto:)/i.test(url)) document.execCommand("createLink", false, url);
      } else if (command === "code") {
        const text = window.getSelection().toString() || "code";
        const escaped = text.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
        document.execCommand("insertHTML", false, `<code>${escaped}</code>`);
      } else {
        document.execCommand(command, false, null);
      }
    });
    let lastTyping = 0;
    editor.addEventListener("input", () => {
      const now = Date.now();
      if (now - lastTyping < 3000) return;
      lastTyping = now;
      fetch(form.dataset.typingUrl, { method: "POST", headers: { "X-CSRF-Token": csrf } }).catch(() => {});
    });
    form.addEventListener("submit", () => { textarea.value = editor.innerHTML; });
  }
  if (composer) setUpComposer(composer);

  // The conversation's header sticks to the top and the composer to the bottom: what scrolls
  // into view (a linked message, the focus) must land between them. Their heights go into CSS
  // variables that inbox.css's scroll-padding reads.
  const STICKY = [["--conversation-head-height", ".conversation-head"], ["--composer-height", "form.composer"]];
  function measureSticky() {
    for (const [name, selector] of STICKY) {
      const element = document.querySelector(selector);
      if (!element) continue;
      const height = sticks(element) ? Math.ceil(element.getBoundingClientRect().height) : 0;
      document.documentElement.style.setProperty(name, `${height}px`);
    }
  }
  // In a short column the composer (and in a very short one the header) scrolls with the thread.
  function sticks(element) { return getComputedStyle(element).position === "sticky"; }
  function composerSticks() {
    const composer = document.querySelector("form.composer");
    return !composer || sticks(composer);
  }

  // Open a conversation at its newest message, as every chat does (or at the message a link
  // names, #msg_…), and keep the newest message in view while the page settles (pictures load,
  // the header changes) until the agent scrolls away from it.
  function showLatest() {
    const column = document.querySelector(".conversation");
    if (column && column.scrollHeight > column.clientHeight && composerSticks()) column.scrollTop = column.scrollHeight; // wide screens
    else document.querySelector(".thread > li:last-child")?.scrollIntoView({ block: "end" }); // above the composer
  }
  function linkedItem() {
    try {
      const id = decodeURIComponent(window.location.hash.slice(1));
      return id ? document.getElementById(id)?.closest(".thread > li") : null;
    } catch { return null; } // not an id of this page
  }
  let pinned = false;
  const resized = new ResizeObserver(() => {
    measureSticky();
    if (pinned) showLatest();
  });
  function watchLayout() { // again when live updates renew the header or the thread
    resized.disconnect();
    for (const selector of [".conversation", ".conversation-head", ".thread", "form.composer"]) {
      const element = document.querySelector(selector);
      if (element) resized.observe(element);
    }
  }
  const column = document.querySelector(".conversation");
  if (column) {
    measureSticky();
    const linked = linkedItem();
    if (linked) linked.scrollIntoView({ block: "start" });
    else { showLatest(); pinned = true; }
    watchLayout();
    const follow = () => { pinned = nearBottom(); };
    column.addEventListener("scroll", follow, { passive: true });
    window.addEventListener("scroll", follow, { passive: true });
  }

  // The snooze form's time field shows once "until a time" is chosen. Delegated, as below.
  function syncSnooze(select) {
    const until = select.form?.querySelector("[data-snooze-until]");
    if (until) until.hidden = select.value !== "until";
  }
  document.querySelectorAll("#snooze-for").forEach(syncSnooze);
  document.addEventListener("change", (event) => {
    if (event.target.matches?.("#snooze-for")) syncSnooze(event.target);
  });

  // A snooze's "until" is the agent's own time: send the browser's offset from UTC at that
  // date (summer time included). Delegated: live updates replace the form.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    const offset = form.querySelector?.("[data-utc-offset]");
    const until = form.querySelector?.("input[name=until]")?.value;
    if (!offset || !until) return;
    const local = new Date(until);
    if (!Number.isNaN(local.getTime())) offset.value = String(-local.getTimezoneOffset());
  }, true);

  // --- live updates ----------------------------------------------------------------------------
  const queueArea = document.getElementById("queue-area");
  const conversationArea = document.getElementById("conversation-area");
  const notice = document.getElementById("live-notice");
  const currentId = conversationArea?.dataset.conversationId;
  let refreshList = null;
  let refreshConversation = null;

  function debounce(fn, ms) {
    let timer = null;
    return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  async function fetchHtml(url) {
    const response = await fetch(url, { headers: { Accept: "text/html" } });
    if (response.status === 401) { window.location = "/login"; return null; }
    if (!response.ok) return null;
    return new DOMParser().parseFromString(await response.text(), "text/html");
  }

  // Bulk actions: the form shows once a conversation is ticked (without this file it is always
  // there); a live refresh of the list keeps what was ticked and chosen.
  function syncBulk() {
    const bulk = queueArea.querySelector("#bulk");
    if (bulk) bulk.hidden = !queueArea.querySelector("input.pick:checked");
  }
  if (queueArea) {
    queueArea.addEventListener("change", (event) => {
      if (event.target.matches("input.pick")) syncBulk();
    });
    syncBulk();
    refreshList = debounce(async () => {
      const query = queueArea.dataset.query || "";
      const doc = await fetchHtml(`/inbox/fragments/list?${query}&selected=${queueArea.dataset.selected || ""}`);
      if (!doc) return;
      const ticked = new Set([...queueArea.querySelectorAll("input.pick:checked")].map((box) => box.value));
      const chosen = [...queueArea.querySelectorAll("#bulk select, #bulk input[name=tag]")]
        .map((field) => [field.name, field.value]);
      queueArea.replaceChildren(...doc.body.childNodes);
      for (const box of queueArea.querySelectorAll("input.pick")) box.checked = ticked.has(box.value);
      for (const [name, value] of chosen) {
        const field = queueArea.querySelector(`#bulk [name=${name}]`);
        if (field) field.value = value;
      }
      syncBulk();
    }, 200);
  }
  // --- a long conversation: its newest messages first, older ones on demand ----------------------
  // "Show older messages" is a link (?before=<message id>) that works without this file; here
  // it loads the older messages in place, above the ones shown, keeping the reader's place and
  // the reply being written. Live refreshes re-render only the part of the thread the page was
  // opened with (the newest messages, usually) and keep the older ones loaded above it.
  function joinQuery(...parts) { return parts.filter(Boolean).join("&"); }
  function scroller() {
    const column = document.querySelector(".conversation");
    return column && column.scrollHeight > column.clientHeight ? column : document.scrollingElement;
  }
  function nearBottom() {
    const box = scroller();
    const page = box === document.scrollingElement; // a phone: the details follow the thread
    if (page || !composerSticks()) { // the newest message in view, or the composer below it
      const newest = document.querySelector(".thread > li:last-child");
      if (newest) {
        const { bottom } = newest.getBoundingClientRect();
        return bottom > 0 && bottom - (page ? window.innerHeight : box.getBoundingClientRect().bottom) < 160;
      }
    }
    return box.scrollHeight - box.scrollTop - box.clientHeight < 160;
  }
  function setControl(selector, fresh, place) {
    const old = conversationArea.querySelector(selector);
    if (old && fresh) old.replaceWith(fresh);
    else if (old) old.remove();
    else if (fresh) place(fresh);
  }
  function mergeThread(doc) {
    const thread = conversationArea.querySelector(".thread");
    const fresh = doc.querySelector(".thread");
    if (!thread || !fresh) return;
    const first = fresh.firstElementChild;
    const same = first?.id ? document.getElementById(first.id) : null;
    if (same && same.parentElement === thread) {
      // What comes before the fresh part stays (older messages loaded); the rest is renewed.
      while (same.nextElementSibling) same.nextElementSibling.remove();
      same.replaceWith(...fresh.children);
    } else {
      // More new messages than a page since the last refresh: start again from the fresh page.
      thread.replaceWith(fresh);
      setControl(".older-messages", doc.querySelector(".older-messages"), (el) => fresh.before(el));
    }
    setControl(".newer-messages", doc.querySelector(".newer-messages"), (el) => conversationArea.querySelector(".thread").after(el));
  }
  async function loadOlder(link) {
    const holder = link.closest(".older-messages");
    const thread = conversationArea.querySelector(".thread");
    if (!holder || !thread || holder.getAttribute("aria-busy") === "true") return;
    holder.setAttribute("aria-busy", "true");
    const query = joinQuery(queueArea?.dataset.query, `before=${encodeURIComponent(link.dataset.before)}`);
    const doc = await fetchHtml(`/inbox/fragments/conversation/${currentId}?${query}`).catch(() => null);
    holder.removeAttribute("aria-busy");
    if (!doc?.querySelector(".thread")) { window.location = link.href; return; }
    pinned = false; // the reader stays with the older messages
    const box = scroller();
    const fromBottom = box.scrollHeight - box.scrollTop;
    const older = [...doc.querySelector(".thread").children].filter((item) => !item.id || !document.getElementById(item.id));
    thread.prepend(...older);
    const next = doc.querySelector(".older-messages");
    if (next) holder.replaceWith(next); else holder.remove();
    const after = scroller();
    after.scrollTop = after.scrollHeight - fromBottom; // the reader's place does not move
    const focus = next?.querySelector("a") ?? older[0];
    if (focus && !next) focus.tabIndex = -1;
    focus?.focus({ preventScroll: true });
  }

  if (conversationArea && currentId) {
    conversationArea.addEventListener("click", (event) => {
      const link = event.target.closest("a.show-older");
      if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      loadOlder(link);
    });
    // A refresh while the agent can see the page marks the conversation read (read=1); the
    // queue refreshes after it, so that its row shows that. Seen later, when the tab shows again.
    let unseen = false;
    refreshConversation = debounce(async () => {
      const looking = document.visibilityState === "visible";
      unseen = !looking;
      const window_ = conversationArea.querySelector(".thread")?.dataset.window;
      const query = joinQuery(queueArea?.dataset.query, window_, looking ? "read=1" : "");
      const doc = await fetchHtml(`/inbox/fragments/conversation/${currentId}?${query}`).finally(() => refreshList?.());
      if (!doc) return;
      const atBottom = nearBottom();
      // Replace everything but the composer, so a reply being written is never lost.
      for (const selector of [".conversation-head", ".details"]) {
        const fresh = doc.querySelector(selector);
        const old = conversationArea.querySelector(selector);
        if (fresh && old) old.replaceWith(fresh);
      }
      conversationArea.querySelectorAll("#snooze-for").forEach(syncSnooze);
      mergeThread(doc);
      watchLayout();
      if (atBottom) showLatest(); // not while the agent reads older messages
    }, 150);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && unseen) refreshConversation();
    });
  }

  // Seen by Fin: the banner about replies Fin has not fetched changes on live events (a reply,
  // a receipt) and, with no event to tell, when the next waiting reply becomes overdue.
  let finAlertTimer = null;
  function armFinAlert(area) {
    clearTimeout(finAlertTimer);
    const seconds = parseFloat(area?.dataset.refreshIn ?? "");
    if (!Number.isFinite(seconds)) return;
    finAlertTimer = setTimeout(() => {
      refreshFinAlert();
      refreshConversation?.(); // its replies' marks turn overdue too
    }, seconds * 1000 + 250);
  }
  const refreshFinAlert = debounce(async () => {
    const doc = await fetchHtml("/inbox/fragments/fin-alert");
    const fresh = doc?.getElementById("fin-alert");
    const old = document.getElementById("fin-alert");
    if (!fresh || !old) return;
    old.replaceWith(fresh);
    armFinAlert(fresh);
  }, 300);
  armFinAlert(document.getElementById("fin-alert"));

  function announce(event) {
    const link = `/inbox/conversations/${event.conversation_id}`;
    notice.replaceChildren();
    const text = document.createElement("span");
    text.textContent = "Fin handed a conversation over: a person is needed. ";
    const anchor = document.createElement("a");
    anchor.href = link;
    anchor.textContent = "Open it";
    notice.append(text, anchor);
    notice.hidden = false;
    if ("Notification" in window && Notification.permission === "granted") {
      const n = new Notification("findesk: a conversation needs a person", { body: "Fin handed it over.", tag: event.conversation_id });
      n.onclick = () => { window.focus(); window.location = link; };
    }
  }

  function offerNotifications() {
    if (!("Notification" in window) || Notification.permission !== "default") return;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Notify me of handovers";
    button.addEventListener("click", () => Notification.requestPermission().then(() => button.remove()));
    document.querySelector(".me")?.prepend(button);
  }
  offerNotifications();

  // The customer types in findesk's chat: "Ada is typing…" until they send, or 8 s pass.
  let customerTypingTimer = null;
  function customerTyping(on) {
    const line = document.getElementById("customer-typing");
    if (!line) return;
    clearTimeout(customerTypingTimer);
    line.textContent = on ? `${line.dataset.name} is typing…` : "";
    if (on) customerTypingTimer = setTimeout(() => customerTyping(false), 8000);
  }

  if ("EventSource" in window) {
    // EventSource reconnects by itself and sends Last-Event-ID: the server resumes from there.
    const source = new EventSource("/inbox/live");
    source.addEventListener("change", (message) => {
      const event = JSON.parse(message.data);
      if (event.kind === "typing") { // someone types: nothing changed yet, nothing to refresh
        if (event.actor === "user" && event.conversation_id === currentId) customerTyping(true);
        return;
      }
      if (event.conversation_id === currentId && event.kind === "message") customerTyping(false);
      // The open conversation's own refresh refreshes the list once it has marked it read.
      if (event.conversation_id === currentId && refreshConversation) refreshConversation();
      else refreshList?.();
      if (document.getElementById("fin-alert")) refreshFinAlert();
      const handedOver = event.owner === "waiting" && (event.kind === "assignee" || event.kind === "conversation");
      if (handedOver && event.actor !== "agent") announce(event);
    });
    document.body.dataset.live = "connecting";
    source.addEventListener("open", () => { document.body.dataset.live = "open"; });
    source.addEventListener("error", () => { document.body.dataset.live = "reconnecting"; });
  }
})();
