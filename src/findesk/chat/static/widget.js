// findesk's chat widget: one script tag on the company's site, no build step, no dependency.
//
//   <script src="https://helpdesk.example.com/chat/widget.js" defer data-findesk-chat
//           data-user-id="42" data-user-hash="…" data-name="Ada" data-email="ada@example.com"></script>
//
// It renders into a shadow root (the site's CSS stays out), talks only to the findesk that served
// it (so a strict CSP of that one origin is enough: no eval, no inline styles or handlers), keeps
// its session token in localStorage and reads the live event stream with fetch, so the token
// never travels in a URL. Message bodies are HTML that findesk has sanitised; everything else
// (names, titles, previews, quick reply labels) is put in the page as text.
(() => {
  "use strict";

  const script = document.currentScript || document.querySelector("script[data-findesk-chat]");
  if (!script || !script.src || window.__findeskChat) return;
  window.__findeskChat = true;

  const BASE = script.src.replace(/\/chat\/widget\.js(?:[?#].*)?$/, "");
  const API = `${BASE}/chat/v1`;
  const STORE_KEY = `findesk-chat:${BASE}`;
  const IDENTITY = {
    user_id: script.dataset.userId || null,
    user_hash: script.dataset.userHash || null,
    name: script.dataset.name || null,
    email: script.dataset.email || null,
  };
  const RATINGS = [
    ["terrible", "Terrible", "😠"],
    ["bad", "Bad", "🙁"],
    ["ok", "OK", "😐"],
    ["good", "Good", "🙂"],
    ["amazing", "Amazing", "🤩"],
  ];
  const TYPING_SEND_EVERY_MS = 3000;  // the visitor's typing: at most one call per 3 s
  const TYPING_SHOWN_MS = 8000;       // someone else's typing fades unless repeated
  const RECONNECT_MAX_MS = 30000;
  const MAX_BODY = 10000;
  const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

  // --- state -----------------------------------------------------------------------------------

  let config = null;
  let session = loadSession();       // {token, expires_at, user, identity}
  let conversations = [];            // the list, newest first
  let current = null;                // the open conversation's id ("" for a new one), null: list
  let threadIds = new Set();         // ids of the messages shown in the thread
  let lastMessageId = null;          // the newest shown, for ?after_id= on resume
  let pendingUploads = [];           // {key, name, ...} uploaded, not yet sent
  let uploading = 0;
  let lastTypingSent = 0;
  let typingTimer = null;
  let streamAbort = null;
  let lastEventId = null;
  let reconnectDelay = 1000;
  let serverRetry = null;            // the stream's own `retry:` (ms), e.g. longer when evicted
  let conversationState = {};        // id -> {status, fin_state, waiting_for_human}
  let rated = loadSet("rated");      // conversation ids the visitor has rated
  let ratingAsked = loadSet("rating");  // conversation ids findesk asked a rating for

  // --- storage ---------------------------------------------------------------------------------

  function storage() {
    try { return window.localStorage; } catch { return null; }  // blocked in some privacy modes
  }

  function loadAll() {
    try { return JSON.parse(storage()?.getItem(STORE_KEY) || "{}") || {}; } catch { return {}; }
  }

  function saveAll(patch) {
    const all = { ...loadAll(), ...patch };
    try { storage()?.setItem(STORE_KEY, JSON.stringify(all)); } catch { /* full or blocked */ }
  }

  function loadSession() {
    const stored = loadAll().session;
    if (!stored || !stored.token) return null;
    // A session made for another signed-in user (or an anonymous one, once signed in) is not ours.
    if ((stored.identity || null) !== IDENTITY.user_id) return null;
    if (stored.expires_at && Date.parse(stored.expires_at) < Date.now()) return null;
    return stored;
  }

  function loadSet(name) {
    const value = loadAll()[name];
    return new Set(Array.isArray(value) ? value : []);
  }

  function saveSet(name, set) { saveAll({ [name]: [...set].slice(-200) }); }

  // --- HTTP ------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message || `The chat answered ${status}.`);
      this.status = status;
      this.code = code;
    }
  }

  async function request(method, path, body, { auth = true, retry = true } = {}) {
    const headers = {};
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
    if (auth) {
      await ensureSession();
      headers.Authorization = `Bearer ${session.token}`;
    }
    let response;
    try {
      response = await fetch(`${API}${path}`, { method, headers, body: payload, credentials: "omit", mode: "cors" });
    } catch {
      throw new ApiError(0, "network", "The chat could not be reached. Check your connection and try again.");
    }
    if (response.status === 401 && auth && retry) {
      forgetSession();  // expired or revoked: start a new one once
      return request(method, path, body, { auth, retry: false });
    }
    if (response.status === 204 || response.status === 202) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code, error.message);
    }
    return data;
  }

  let sessionPromise = null;

  function ensureSession() {
    if (session) return Promise.resolve(session);
    if (!sessionPromise) {
      const body = {};
      if (IDENTITY.user_id) {
        body.user_id = IDENTITY.user_id;
        body.user_hash = IDENTITY.user_hash || "";
        if (IDENTITY.name) body.name = IDENTITY.name;
        if (IDENTITY.email) body.email = IDENTITY.email;
      }
      sessionPromise = request("POST", "/session", body, { auth: false })
        .then((made) => {
          session = { ...made, identity: IDENTITY.user_id };
          saveAll({ session });
          return session;
        })
        .finally(() => { sessionPromise = null; });
    }
    return sessionPromise;
  }

  async function renewSession() {
    if (!session) return;
    try {
      const renewed = await request("POST", "/session", { token: session.token }, { auth: false });
      session = { ...session, ...renewed, identity: IDENTITY.user_id };
      saveAll({ session });
    } catch (error) {
      if (error.status >= 400 && error.status < 500) forgetSession();
    }
  }

  function forgetSession() {
    session = null;
    saveAll({ session: null });
  }

  // --- DOM helpers -----------------------------------------------------------------------------

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name === "hidden") node.hidden = true;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  const SVG = "http://www.w3.org/2000/svg";

  function icon(path, size = 24) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", String(size));
    svg.setAttribute("height", String(size));
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const shape = document.createElementNS(SVG, "path");
    shape.setAttribute("d", path);
    shape.setAttribute("fill", "currentColor");
    svg.append(shape);
    return svg;
  }

  const ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2zm3 5v2h10V9H7zm0 4v2h7v-2H7z",
    close: "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6l5.6-5.6L5 6.4z",
    back: "M15.4 5.4 14 4l-8 8 8 8 1.4-1.4L8.8 12z",
    attach: "M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z",
    send: "M3 20.5 21 12 3 3.5v6.6L15 12 3 13.9z",
  };

  // Only absolute http(s) URLs become links or pictures.
  function httpUrl(value) {
    try {
      const url = new URL(value, BASE);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch { return null; }
  }

  // Defence in depth: the server has sanitised message bodies already; this parses them inert
  // (a template runs nothing) and keeps only the contract's tags and safe attributes.
  const KEEP = new Set(["P", "H1", "H2", "B", "I", "A", "IMG", "BR", "CODE", "UL", "OL", "LI", "STRONG", "EM"]);
  const DROP = new Set(["SCRIPT", "STYLE", "IFRAME", "OBJECT", "EMBED", "SVG", "MATH", "TEMPLATE", "FORM", "BASE", "META", "LINK", "NOSCRIPT"]);

  function trustedFragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    const walk = (parent) => {
      for (const node of [...parent.childNodes]) {
        if (node.nodeType === Node.COMMENT_NODE) { node.remove(); continue; }
        if (node.nodeType !== Node.ELEMENT_NODE) continue;
        const tag = node.tagName.toUpperCase();
        if (DROP.has(tag) || node.namespaceURI !== "http://www.w3.org/1999/xhtml") { node.remove(); continue; }
        walk(node);
        if (!KEEP.has(tag)) { node.replaceWith(...node.childNodes); continue; }
        for (const attribute of [...node.attributes]) {
          const name = attribute.name.toLowerCase();
          const keep = (tag === "A" && (name === "href" || name === "title"))
            || (tag === "IMG" && (name === "src" || name === "alt" || name === "title"));
          if (!keep) node.removeAttribute(attribute.name);
        }
        if (tag === "A") {
          const href = node.getAttribute("href");
          const safe = href && (/^mailto:/i.test(href.trim()) ? href.trim() : httpUrl(href));
          if (safe) node.setAttribute("href", safe); else node.removeAttribute("href");
          node.setAttribute("target", "_blank");
          node.setAttribute("rel", "noopener noreferrer nofollow");
        }
        if (tag === "IMG") {
          const src = httpUrl(node.getAttribute("src") || "");
          if (src) node.setAttribute("src", src); else node.remove();
          if (!node.hasAttribute("alt")) node.setAttribute("alt", "");
        }
      }
    };
    walk(template.content);
    return template.content;
  }

  function timeElement(iso) {
    const time = el("time", { datetime: iso });
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) { time.textContent = iso || ""; return time; }
    const today = date.toDateString() === new Date().toDateString();
    const short = { hour: "numeric", minute: "2-digit" };
    time.textContent = today
      ? date.toLocaleTimeString([], short)
      : date.toLocaleString([], { month: "short", day: "numeric", ...short });
    time.title = date.toLocaleString([], { dateStyle: "full", timeStyle: "short" });
    return time;
  }

  function initials(name) {
    const words = String(name || "").trim().split(/\s+/).filter(Boolean);
    return (words.slice(0, 2).map((w) => [...w][0]).join("") || "?").toUpperCase();
  }

  function authorName(author) {
    if (!author) return "";
    // Typing events name only the kind of author ("fin" or "agent").
    if (author === "fin") return "Fin";
    if (author === "agent") return "A teammate";
    if (typeof author === "string") return author;
    if (author.type === "user") return "You";
    if (author.type === "fin") return author.name || "Fin";
    return author.name || "Support";
  }

  // --- the shell -------------------------------------------------------------------------------

  const host = document.createElement("findesk-chat");
  const root = host.attachShadow({ mode: "open" });
  const sheet = el("link", { rel: "stylesheet", href: `${BASE}/chat/widget.css` });
  const frame = el("div", { class: "fdc", hidden: true });
  root.append(sheet, frame);

  const launcher = el("button", {
    type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "fdc-panel",
    "aria-label": "Open chat",
  }, icon(ICONS.chat, 28));
  const badge = el("span", { class: "badge", hidden: true });
  launcher.append(badge);

  const title = el("h2", { id: "fdc-title", class: "title", text: "Chat" });
  const greeting = el("p", { class: "greeting", id: "fdc-greeting" });
  const back = el("button", { type: "button", class: "icon back", "aria-label": "All conversations", hidden: true }, icon(ICONS.back, 20));
  const close = el("button", { type: "button", class: "icon close", "aria-label": "Close chat" }, icon(ICONS.close, 20));
  const header = el("header", { class: "head" }, back, el("div", { class: "titles" }, title, greeting), close);

  const errorBox = el("p", { class: "error", role: "alert", hidden: true });
  const connection = el("p", { class: "connection", role: "status", hidden: true });

  // The list of the visitor's conversations.
  const listHeading = el("h3", { class: "section-title", id: "fdc-list-title", tabindex: "-1", text: "Your conversations" });
  const list = el("ul", { class: "conversations", "aria-labelledby": "fdc-list-title" });
  const empty = el("p", { class: "empty", text: "No conversations yet.", hidden: true });
  const newButton = el("button", { type: "button", class: "primary new" }, "New conversation");
  const signInNote = el("p", { class: "notice", hidden: true, text: "Please sign in on this site to chat with us." });
  const home = el("section", { class: "view home", "aria-labelledby": "fdc-list-title" }, listHeading, empty, list, newButton, signInNote);

  // The thread.
  const threadHeading = el("h3", { class: "visually-hidden", id: "fdc-thread-title", tabindex: "-1", text: "Conversation" });
  const messages = el("ol", { class: "messages" });
  const log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-labelledby": "fdc-thread-title" }, messages);
  const quickReplies = el("div", { class: "quick-replies", role: "group", "aria-label": "Suggested replies", hidden: true });
  const status = el("p", { class: "status", role: "status", hidden: true });
  const typing = el("p", { class: "typing", role: "status", "aria-live": "polite" });

  const ratingLegend = el("legend", { text: "How would you rate the help you received?" });
  const ratingButtons = el("div", { class: "choices" });
  for (const [value, label, face] of RATINGS) {
    ratingButtons.append(el("button", { type: "button", class: "choice", "data-rating": value, "aria-pressed": "false" },
      el("span", { class: "face", "aria-hidden": "true", text: face }), el("span", { class: "label", text: label })));
  }
  const remarkLabel = el("label", { for: "fdc-remark", text: "Anything to add? (optional)" });
  const remark = el("textarea", { id: "fdc-remark", rows: "2", maxlength: "1000" });
  const ratingSubmit = el("button", { type: "submit", class: "primary", disabled: true }, "Send rating");
  const remarkBox = el("div", { class: "remark", hidden: true }, remarkLabel, remark, ratingSubmit);
  const ratingForm = el("form", { class: "rating", hidden: true },
    el("fieldset", {}, ratingLegend, ratingButtons), remarkBox);
  const ratingThanks = el("p", { class: "thanks", role: "status", hidden: true });

  const textLabel = el("label", { for: "fdc-text", class: "visually-hidden", text: "Message" });
  const text = el("textarea", { id: "fdc-text", rows: "1", maxlength: String(MAX_BODY), placeholder: "Write a message…", "aria-describedby": "fdc-composer-hint" });
  const hint = el("p", { class: "hint", id: "fdc-composer-hint", hidden: true });
  const fileInput = el("input", { type: "file", id: "fdc-file", multiple: true, hidden: true });
  const attach = el("button", { type: "button", class: "icon attach", "aria-label": "Attach a file" }, icon(ICONS.attach, 20));
  const send = el("button", { type: "submit", class: "icon send primary", "aria-label": "Send" }, icon(ICONS.send, 20));
  const uploads = el("ul", { class: "uploads", "aria-label": "Files to send", hidden: true });
  const composer = el("form", { class: "composer" },
    textLabel, uploads, el("div", { class: "row" }, attach, text, send), hint, fileInput);

  const thread = el("section", { class: "view thread", "aria-labelledby": "fdc-thread-title", hidden: true },
    threadHeading, log, quickReplies, status, typing, ratingForm, ratingThanks, composer);

  const panel = el("div", {
    id: "fdc-panel", class: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "fdc-title",
    "aria-describedby": "fdc-greeting", hidden: true,
  }, header, connection, errorBox, home, thread);

  frame.append(panel, launcher);

  // The sheet hides nothing until it has loaded: no flash of unstyled widget.
  sheet.addEventListener("load", () => { frame.hidden = false; });
  sheet.addEventListener("error", () => { host.remove(); });

  // --- showing things --------------------------------------------------------------------------

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function isOpen() { return !panel.hidden; }

  function openPanel() {
    if (isOpen()) return;
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    frame.classList.add("open");
    updateBadge();
    if (current !== null) {
      showThread(current, { focus: true }).catch((error) => {
        // The conversation left open last time is not this visitor's any more: the list.
        if (error.status === 404) showHome({ focus: true }).catch(reportError);
        else reportError(error);
      });
    } else {
      showHome({ focus: true }).catch(reportError);
    }
  }

  function closePanel({ focusLauncher = true } = {}) {
    if (!isOpen()) return;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    frame.classList.remove("open");
    updateBadge();
    if (focusLauncher) launcher.focus();
  }

  function reportError(error) {
    if (error && error.code === "identity_required") {
      signInNote.hidden = false;
      return;
    }
    showError(error && error.message ? error.message : "Something went wrong.");
  }

  function updateBadge() {
    const unread = conversations.reduce((sum, c) => sum + (Number(c.unread) || 0), 0);
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.hidden = unread === 0;
    launcher.setAttribute("aria-label", `${isOpen() ? "Close" : "Open"} chat${unread ? `, ${unread} unread` : ""}`);
  }

  function preview(conversation) {
    const last = conversation.last_message;
    if (!last) return "";
    const who = last.author_type === "user" ? "You: " : "";
    return `${who}${last.text || ""}`;
  }

  function renderList() {
    list.replaceChildren();
    for (const conversation of conversations) {
      const state = conversationState[conversation.id] || conversation;
      const closed = ["resolved", "closed"].includes(state.status);
      const unread = Number(conversation.unread) || 0;
      const button = el("button", { type: "button", class: "conversation", "data-id": conversation.id },
        el("span", { class: "top" },
          el("span", { class: "subject", text: conversation.title || "Conversation" }),
          conversation.updated_at ? timeElement(conversation.updated_at) : null),
        el("span", { class: "preview", text: preview(conversation) }),
        closed || unread || state.waiting_for_human ? el("span", { class: "tags" },
          unread ? el("span", { class: "unread", text: `${unread} unread` }) : null,
          state.waiting_for_human && !closed ? el("span", { class: "tag", text: "Waiting for a person" }) : null,
          closed ? el("span", { class: "tag", text: "Resolved" }) : null) : null);
      button.addEventListener("click", () => showThread(conversation.id, { focus: true }).catch(reportError));
      list.append(el("li", {}, button));
    }
    empty.hidden = conversations.length > 0;
    updateBadge();
  }

  async function loadConversations() {
    conversations = await request("GET", "/conversations");
    for (const conversation of conversations) {
      conversationState[conversation.id] = {
        status: conversation.status, fin_state: conversation.fin_state,
        waiting_for_human: conversation.waiting_for_human,
      };
    }
    renderList();
  }

  async function showHome({ focus = false } = {}) {
    current = null;
    saveAll({ current: null });
    thread.hidden = true;
    home.hidden = false;
    back.hidden = true;
    showError("");
    if (config && config.identity_required && !IDENTITY.user_id) {
      signInNote.hidden = false;
      newButton.hidden = true;
      if (focus) close.focus();
      return;
    }
    if (session) await loadConversations();
    else renderList();
    // Nobody to list yet: straight to writing the first message.
    if (conversations.length === 0) {
      await showThread("", { focus });
      return;
    }
    if (focus) listHeading.focus();
  }

  function messageElement(message) {
    const author = message.author || { type: "agent" };
    const kind = ["user", "fin", "agent"].includes(author.type) ? author.type : "agent";
    const item = el("li", { class: `message from-${kind}`, "data-id": message.id });
    const meta = el("div", { class: "meta" }, el("span", { class: "name", text: authorName(author) }));
    if (kind === "fin") meta.append(el("span", { class: "ai", text: "AI agent" }));
    if (message.created_at) meta.append(timeElement(message.created_at));
    const content = el("div", { class: "content" }, meta);
    if (message.body_html) {
      const bubble = el("div", { class: "bubble" });
      bubble.append(trustedFragment(message.body_html));
      content.append(bubble);
    }
    const files = (message.attachments || []).filter((a) => httpUrl(a.url));
    if (files.length) {
      const items = el("ul", { class: "files" });
      for (const file of files) {
        const url = httpUrl(file.url);
        const link = el("a", { href: url, target: "_blank", rel: "noopener noreferrer" });
        if (/^image\//.test(file.content_type || "")) {
          link.append(el("img", { src: url, alt: file.name || "Image", loading: "lazy" }));
        } else {
          link.className = "file";
          link.append(el("span", { class: "filename", text: file.name || "File" }));
          if (file.size) link.append(el("span", { class: "size", text: humanSize(file.size) }));
        }
        items.append(el("li", {}, link));
      }
      content.append(items);
    }
    if (kind !== "user") {
      const avatar = el("div", { class: "avatar", "aria-hidden": "true" });
      const photo = author.avatar_url && httpUrl(author.avatar_url);
      if (photo) {
        const img = el("img", { src: photo, alt: "" });
        img.addEventListener("error", () => { avatar.replaceChildren(initials(authorName(author))); });
        avatar.append(img);
      } else {
        avatar.textContent = kind === "fin" ? "F" : initials(authorName(author));
      }
      item.append(avatar);
    }
    item.append(content);
    return item;
  }

  function humanSize(bytes) {
    const n = Number(bytes);
    if (!Number.isFinite(n)) return "";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  // The thread follows new messages (and stays at the end when the panel around it changes
  // size) unless the visitor has scrolled up to read.
  let atEnd = true;

  function scrollToEnd() {
    atEnd = true;
    log.scrollTo({ top: log.scrollHeight, behavior: reduceMotion.matches ? "auto" : "smooth" });
  }

  function addMessages(list_) {
    let added = false;
    for (const message of list_) {
      if (!message || threadIds.has(message.id)) continue;
      threadIds.add(message.id);
      messages.append(messageElement(message));
      lastMessageId = message.id;
      added = true;
      // Their message ends their typing.
      if (message.author && message.author.type !== "user") setTyping(null);
      renderQuickReplies(message);
    }
    if (added) scrollToEnd();
    return added;
  }

  // Quick replies belong to the newest message only: anything after it makes them stale.
  function renderQuickReplies(message) {
    quickReplies.replaceChildren();
    const options = (message.author && message.author.type !== "user" && message.quick_replies) || [];
    for (const option of options) {
      const button = el("button", { type: "button", class: "quick", text: option.label });
      button.addEventListener("click", () => {
        sendMessage({ body: option.label, quick_reply_id: option.id }).catch(reportError);
      });
      quickReplies.append(button);
    }
    quickReplies.hidden = options.length === 0;
  }

  function renderState() {
    const state = (current && conversationState[current]) || {};
    const closed = ["resolved", "closed"].includes(state.status);
    if (closed) {
      status.textContent = "This conversation was resolved. Writing again reopens it.";
      status.className = "status resolved";
    } else if (state.waiting_for_human) {
      status.textContent = "Waiting for a person. A teammate will reply here soon.";
      status.className = "status waiting";
    } else {
      status.textContent = "";
      status.className = "status";
    }
    status.hidden = !status.textContent;
    if (state.fin_state === "thinking" && !state.waiting_for_human && !closed) setTyping("Fin");
    const askRating = current && ratingAsked.has(current) && !rated.has(current);
    ratingForm.hidden = !askRating;
    if (!askRating) ratingThanks.hidden = !(current && rated.has(current) && ratingThanks.dataset.for === current);
  }

  function setTyping(name) {
    clearTimeout(typingTimer);
    typing.textContent = name ? `${name} is typing…` : "";
    typing.classList.toggle("on", Boolean(name));
    if (name) typingTimer = setTimeout(() => setTyping(null), TYPING_SHOWN_MS);
  }

  async function showThread(id, { focus = false } = {}) {
    current = id;
    saveAll({ current: id || null });
    home.hidden = true;
    thread.hidden = false;
    back.hidden = !id && conversations.length === 0;
    showError("");
    messages.replaceChildren();
    quickReplies.hidden = true;
    threadIds = new Set();
    lastMessageId = null;
    setTyping(null);
    ratingThanks.hidden = true;
    resetRating();
    const known = conversations.find((c) => c.id === id);
    threadHeading.textContent = known && known.title ? known.title : "New conversation";
    if (id) {
      const loaded = await request("GET", `/conversations/${encodeURIComponent(id)}/messages`);
      if (current !== id) return;
      addMessages(loaded);
      markRead(id);
    } else if (config && config.greeting) {
      messages.append(el("li", { class: "message from-fin greeting-message" },
        el("div", { class: "content" }, el("div", { class: "bubble" }, el("p", { text: config.greeting })))));
    }
    renderState();
    if (focus) text.focus();
  }

  function markRead(id) {
    const known = conversations.find((c) => c.id === id);
    if (known) known.unread = 0;
    updateBadge();
    if (!document.hidden && isOpen()) request("POST", `/conversations/${encodeURIComponent(id)}/read`).catch(() => {});
  }

  // --- sending ---------------------------------------------------------------------------------

  let sending = false;

  async function sendMessage(payload) {
    if (sending) return;
    if (uploading) { showError("Wait for your files to finish uploading."); return; }
    sending = true;
    send.disabled = true;
    showError("");
    const body = { ...payload };
    if (!body.quick_reply_id && pendingUploads.length) body.attachments = pendingUploads.map((u) => u.key);
    try {
      if (!current) {
        const made = await request("POST", "/conversations", body);
        const conversation = made.conversation;
        conversations.unshift(conversation);
        conversationState[conversation.id] = {
          status: conversation.status, fin_state: conversation.fin_state,
          waiting_for_human: conversation.waiting_for_human,
        };
        current = conversation.id;
        saveAll({ current });
        back.hidden = false;
        messages.querySelector(".greeting-message")?.remove();
        threadHeading.textContent = conversation.title || "Conversation";
        addMessages([made.message]);
      } else {
        const message = await request("POST", `/conversations/${encodeURIComponent(current)}/messages`, body);
        addMessages([message]);
        if (rated.has(current) || ratingAsked.has(current)) {
          ratingAsked.delete(current);
          saveSet("rating", ratingAsked);
        }
      }
      if (!body.quick_reply_id) {
        text.value = "";
        pendingUploads = [];
        renderUploads();
        lastTypingSent = 0; // the message ended their typing: the next keystroke says so again
      }
      quickReplies.hidden = true;
      renderState();
    } finally {
      sending = false;
      send.disabled = false;
    }
  }

  function renderUploads() {
    uploads.replaceChildren();
    for (const upload of pendingUploads) {
      const remove = el("button", { type: "button", class: "icon remove", "aria-label": `Remove ${upload.name}` }, icon(ICONS.close, 14));
      remove.addEventListener("click", () => {
        pendingUploads = pendingUploads.filter((u) => u !== upload);
        renderUploads();
        text.focus();
      });
      uploads.append(el("li", {}, el("span", { class: "filename", text: upload.name }), remove));
    }
    uploads.hidden = pendingUploads.length === 0 && uploading === 0;
    if (uploading) uploads.append(el("li", { class: "progress", role: "status", text: "Uploading…" }));
  }

  async function uploadFiles(files) {
    for (const file of files) {
      uploading += 1;
      renderUploads();
      try {
        const form = new FormData();
        form.append("file", file, file.name);
        pendingUploads.push(await request("POST", "/attachments", form));
      } catch (error) {
        showError(`${file.name}: ${error.message}`);
      } finally {
        uploading -= 1;
        renderUploads();
      }
    }
  }

  function sendTyping() {
    if (!current || !session) return;
    const now = Date.now();
    if (now - lastTypingSent < TYPING_SEND_EVERY_MS) return;
    lastTypingSent = now;
    request("POST", `/conversations/${encodeURIComponent(current)}/typing`).catch(() => {});
  }

  // --- rating ----------------------------------------------------------------------------------

  let chosenRating = null;

  function resetRating() {
    chosenRating = null;
    remark.value = "";
    ratingSubmit.disabled = true;
    remarkBox.hidden = true;
    for (const button of ratingButtons.children) button.setAttribute("aria-pressed", "false");
  }

  async function submitRating() {
    if (!current || !chosenRating) return;
    const id = current;
    ratingSubmit.disabled = true;
    const body = { rating: chosenRating };
    if (remark.value.trim()) body.remark = remark.value.trim();
    try {
      await request("POST", `/conversations/${encodeURIComponent(id)}/rating`, body);
    } catch (error) {
      if (error.status !== 409) { ratingSubmit.disabled = false; throw error; }
    }
    rated.add(id);
    ratingAsked.delete(id);
    saveSet("rated", rated);
    saveSet("rating", ratingAsked);
    ratingForm.hidden = true;
    ratingThanks.dataset.for = id;
    ratingThanks.textContent = "Thank you for your rating!";
    ratingThanks.hidden = false;
    text.focus();
  }

  // --- the live stream -------------------------------------------------------------------------

  function handleEvent(name, data) {
    if (name === "message") {
      const known = conversations.find((c) => c.id === data.conversation_id);
      if (known) {
        known.last_message = { text: textOf(data.body_html), author_type: data.author && data.author.type };
        known.updated_at = data.created_at || known.updated_at;
        conversations = [known, ...conversations.filter((c) => c !== known)];
      }
      if (data.conversation_id === current) {
        addMessages([data]);
        if (isOpen() && !document.hidden) markRead(current);
        else if (known && data.author && data.author.type !== "user") known.unread = (Number(known.unread) || 0) + 1;
      } else if (known && data.author && data.author.type !== "user") {
        known.unread = (Number(known.unread) || 0) + 1;
      } else if (!known) {
        loadConversations().catch(() => {});
      }
      if (current === null && isOpen()) renderList(); else updateBadge();
    } else if (name === "typing") {
      const author = data.author;
      if (data.conversation_id === current && !(author && author.type === "user")) setTyping(authorName(author) || "Someone");
    } else if (name === "conversation") {
      conversationState[data.id] = { status: data.status, fin_state: data.fin_state, waiting_for_human: data.waiting_for_human };
      const known = conversations.find((c) => c.id === data.id);
      if (known) Object.assign(known, conversationState[data.id]);
      if (data.id === current) {
        if (data.fin_state !== "thinking" && typing.textContent.startsWith("Fin ")) setTyping(null);
        renderState();
      }
      if (current === null && isOpen()) renderList();
    } else if (name === "rating_request") {
      if (!rated.has(data.conversation_id)) {
        ratingAsked.add(data.conversation_id);
        saveSet("rating", ratingAsked);
      }
      if (data.conversation_id === current) renderState();
    }
  }

  function textOf(html) {
    return (trustedFragment(html || "").textContent || "").trim();
  }

  function showConnection(message) {
    connection.textContent = message || "";
    connection.hidden = !message;
  }

  async function connect() {
    if (streamAbort || !session) return;
    const abort = new AbortController();
    streamAbort = abort;
    let opened = false;
    try {
      const headers = { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await fetch(`${API}/events`, { headers, signal: abort.signal, credentials: "omit", cache: "no-store" });
      if (response.status === 401) {
        forgetSession();
        throw new ApiError(401, "unauthorized");
      }
      if (!response.ok || !response.body) {
        const after = Number(response.headers.get("Retry-After"));
        if (after > 0) reconnectDelay = Math.min(after * 1000, RECONNECT_MAX_MS * 2);
        throw new ApiError(response.status, "stream");
      }
      opened = true;
      reconnectDelay = 1000;
      showConnection("");
      // What came before the stream opened (or while it was down), should findesk not replay it.
      catchUp().catch(() => {});
      await readStream(response.body);
    } catch {
      // dropped, refused or aborted: below
    } finally {
      if (streamAbort === abort) streamAbort = null;
    }
    if (abort.signal.aborted) return;
    if (opened) showConnection("Reconnecting…");
    else if (reconnectDelay >= 4000) showConnection("Connection lost. Reconnecting…");
    const delay = reconnectDelay;
    reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
    // A stream that ran and ended comes back after the server's `retry:` (or a second); one
    // that could not open backs off, doubling up to half a minute.
    const wait = opened ? (serverRetry ?? 1000) : delay;
    setTimeout(() => { ensureSession().then(connect).catch(() => setTimeout(connect, delay)); }, wait);
  }

  async function catchUp() {
    if (current && lastMessageId) {
      const missed = await request("GET", `/conversations/${encodeURIComponent(current)}/messages?after_id=${encodeURIComponent(lastMessageId)}`);
      addMessages(missed);
    }
    if (current === null && isOpen()) await loadConversations();
  }

  // Server-sent events, parsed by hand: `EventSource` cannot send the Authorization header.
  async function readStream(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { name: "message", data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (event.id !== null) lastEventId = event.id;
          if (event.data.length) {
            let data = null;
            try { data = JSON.parse(event.data.join("\n")); } catch { data = null; }
            if (data) {
              try { handleEvent(event.name, data); } catch (error) { console.warn("findesk chat:", error); }
            }
          }
          event = { name: "message", data: [], id: null };
          continue;
        }
        if (line.startsWith(":")) continue;  // a keep-alive comment
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value_ = colon === -1 ? "" : line.slice(colon + 1);
        if (value_.startsWith(" ")) value_ = value_.slice(1);
        if (field === "event") event.name = value_;
        else if (field === "data") event.data.push(value_);
        else if (field === "id" && !value_.includes("\0")) event.id = value_;
        else if (field === "retry" && /^\d+$/.test(value_)) serverRetry = Number(value_);
      }
    }
  }

  // --- wiring ----------------------------------------------------------------------------------

  // The thread follows its end until the reader scrolls up. Only a move up says so: the scroll
  // events of the widget's own (smooth) scrolling, or of a panel that shrank meanwhile (a rating
  // prompt), must not leave the newest messages out of sight.
  let lastTop = 0;
  log.addEventListener("scroll", () => {
    const top = log.scrollTop;
    if (log.scrollHeight - top - log.clientHeight < 48) atEnd = true;
    else if (top < lastTop) atEnd = false;
    lastTop = top;
  });
  if (window.ResizeObserver) {
    new ResizeObserver(() => { if (atEnd) log.scrollTop = log.scrollHeight; }).observe(log);
  }

  launcher.addEventListener("click", () => { if (isOpen()) closePanel(); else openPanel(); });
  close.addEventListener("click", () => closePanel());
  back.addEventListener("click", () => showHome({ focus: true }).catch(reportError));
  newButton.addEventListener("click", () => showThread("", { focus: true }).catch(reportError));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.stopPropagation(); closePanel(); }
    if (event.key === "Tab" && phone.matches) keepFocusInside(event);
  });

  // At phone width the panel covers the page: it is modal, and Tab goes round inside it.
  const phone = window.matchMedia("(max-width: 480px)");
  const syncModal = () => panel.setAttribute("aria-modal", String(phone.matches));
  phone.addEventListener("change", syncModal);
  syncModal();

  function keepFocusInside(event) {
    const focusable = [...panel.querySelectorAll("button, textarea, input, a[href], [tabindex='0']")]
      .filter((node) => !node.disabled && node.getClientRects().length > 0);
    if (focusable.length === 0) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    const active = root.activeElement;
    if (event.shiftKey && (active === first || !panel.contains(active))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !panel.contains(active))) {
      event.preventDefault();
      first.focus();
    }
  }

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = text.value.trim();
    if (!body && pendingUploads.length === 0) { text.focus(); return; }
    sendMessage(body ? { body } : {}).then(() => { text.focus(); connect(); }).catch(reportError);
  });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  text.addEventListener("input", () => {
    text.classList.toggle("tall", text.value.includes("\n") || text.value.length > 60);
    if (text.value.trim()) sendTyping();
  });
  attach.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    const files = [...fileInput.files];
    fileInput.value = "";
    uploadFiles(files).then(() => { text.focus(); connect(); });
  });

  ratingButtons.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-rating]");
    if (!button) return;
    chosenRating = button.dataset.rating;
    for (const other of ratingButtons.children) other.setAttribute("aria-pressed", String(other === button));
    ratingSubmit.disabled = false;
    remarkBox.hidden = false;
  });
  ratingForm.addEventListener("submit", (event) => {
    event.preventDefault();
    submitRating().catch(reportError);
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && current && isOpen()) markRead(current);
  });

  // A contrasting text colour for the company's accent (WCAG's relative luminance).
  function applyAccent(color) {
    if (typeof color !== "string" || !/^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i.test(color)) return;
    const hex = color.length === 4 ? color.slice(1).replace(/./g, "$&$&") : color.slice(1);
    const channel = (i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    const luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    const onWhite = 1.05 / (luminance + 0.05);
    const onBlack = (luminance + 0.05) / 0.05;
    // CSSOM, not a style attribute: allowed under a CSP without 'unsafe-inline'.
    host.style.setProperty("--fdc-accent", color);
    host.style.setProperty("--fdc-on-accent", onWhite >= onBlack ? "#ffffff" : "#111111");
  }

  async function start() {
    try {
      config = await request("GET", "/config", undefined, { auth: false });
    } catch {
      return;  // no chat here (switched off or unreachable): no launcher either
    }
    title.textContent = config.title || "Chat";
    greeting.textContent = config.greeting || "";
    greeting.hidden = !config.greeting;
    applyAccent(config.accent_color);
    document.body.append(host);
    if (session) {
      await renewSession();
      if (session) {
        loadConversations().catch(() => {});
        connect();
      }
    }
    const stored = loadAll().current;
    if (stored) current = stored;
  }

  window.FindeskChat = Object.freeze({
    open: openPanel,
    close: () => closePanel({ focusLauncher: false }),
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
