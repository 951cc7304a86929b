// The Messenger: plain DOM, no framework. Bodies arrive sanitised by the server.
"use strict";

const $ = (id) => document.getElementById(id);
let current = null;      // the open conversation's id
let stream = null;       // its EventSource
let pending = false;     // a message is on its way (Fin is thinking)

async function api(method, path, body) {
  const response = await fetch(`/messenger/api${path}`, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.error || response.statusText), { status: response.status });
  return data;
}

function showError(message) {
  const error = $("error");
  error.textContent = message || "";
  error.hidden = !message;
}

// One screen at a time: the others are `hidden` (which the stylesheet makes final).
function show(section) {
  $("loading").hidden = true;
  for (const id of ["intro", "home", "thread"]) $(id).hidden = id !== section;
}

const CLOSED = {
  resolved: "This conversation was resolved.",
  closed: "This conversation is closed.",
  ended: "This conversation has ended.",
};

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Only absolute http(s) URLs become links or pictures (the server checks them too).
function httpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch { return null; }
}

// The time in the reader's own zone and words; the exact instant stays in `datetime`.
function timeElement(iso) {
  const time = element("time");
  time.dateTime = iso;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) { time.textContent = iso; return time; }
  const today = date.toDateString() === new Date().toDateString();
  const short = { hour: "numeric", minute: "2-digit" };
  time.textContent = today
    ? date.toLocaleTimeString([], short)
    : date.toLocaleString([], { month: "short", day: "numeric", ...short });
  time.title = date.toLocaleString([], { dateStyle: "full", timeStyle: "short" });
  return time;
}

function avatar(message) {
  const box = element("div", "avatar");
  box.setAttribute("aria-hidden", "true");
  const initials = message.from === "fin" ? "F" : (message.initials || "?");
  const photo = message.photo_url && httpUrl(message.photo_url);
  if (photo) {
    const img = element("img");
    img.alt = "";
    img.src = photo;
    img.addEventListener("error", () => { box.replaceChildren(initials); });
    box.append(img);
  } else {
    box.textContent = initials;
  }
  return box;
}

function attachmentList(attachments) {
  const list = element("ul", "attachments");
  for (const attachment of attachments) {
    const url = httpUrl(attachment.url);
    if (!url) continue;
    const link = element("a");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    if (attachment.image) {
      const img = element("img");
      img.src = url;
      img.alt = attachment.name;
      img.loading = "lazy";
      link.append(img);
    } else {
      link.className = "file";
      link.append(element("span", "filename", attachment.name));
      if (attachment.filetype) link.append(element("span", "type", attachment.filetype));
    }
    const item = element("li", attachment.image ? "image" : "document");
    item.append(link);
    list.append(item);
  }
  return list;
}

function messageItem(message) {
  const item = element("li", `message from-${message.from}`);
  item.dataset.id = message.id;
  const content = element("div", "content");
  const meta = element("div", "meta");
  meta.append(element("span", "name", message.name));
  if (message.from === "fin") meta.append(element("span", "badge", "AI agent"));
  if (message.created_at) meta.append(timeElement(message.created_at));
  content.append(meta);
  if (message.html) {
    const bubble = element("div", "bubble");
    bubble.innerHTML = message.html;  // sanitised by the server
    for (const link of bubble.querySelectorAll("a")) { link.target = "_blank"; link.rel = "noopener noreferrer"; }
    content.append(bubble);
  }
  if (message.attachments && message.attachments.length) content.append(attachmentList(message.attachments));
  if (message.from !== "you") item.append(avatar(message));
  item.append(content);
  return item;
}

function render(conversation) {
  const list = $("messages");
  const known = new Set([...list.children].map((li) => li.dataset.id));
  for (const message of conversation.messages) {
    if (!known.has(message.id)) list.append(messageItem(message));
  }
  const status = $("status");
  if (conversation.owner === "waiting") {
    status.textContent = "Fin has passed this to the team. A teammate will reply here.";
  } else if (conversation.owner === "human") {
    status.textContent = "You are talking with a teammate.";
  }
  const closed = CLOSED[conversation.status];
  status.hidden = Boolean(closed) || (conversation.owner !== "waiting" && conversation.owner !== "human");
  $("resolved").textContent = closed || "";
  $("resolved").hidden = !closed;
  const hint = $("composer-hint");
  hint.textContent = closed ? "Writing again reopens it." : "";
  hint.hidden = !closed;
  $("composer").text.placeholder = closed ? "Write to reopen this conversation…" : "Ask a question…";
  const typing = $("typing");
  const who = conversation.typing || (pending && conversation.owner !== "human" && conversation.owner !== "waiting" ? "Fin" : null);
  typing.textContent = who ? `${who} is typing…` : "";
  typing.hidden = !who;
  $("ask-person").hidden = Boolean(closed) || (conversation.owner !== "fin" && conversation.owner !== null);
  window.scrollTo(0, document.body.scrollHeight);
}

function open(conversationId) {
  if (stream) stream.close();
  current = conversationId;
  $("messages").replaceChildren();
  show("thread");
  if (conversationId === null) {
    render({ messages: [], owner: null, status: null, typing: null });
    $("status").hidden = true;
    $("ask-person").hidden = true;
    $("composer").text.focus();
    return;
  }
  stream = new EventSource(`/messenger/api/conversations/${encodeURIComponent(conversationId)}/stream`);
  stream.addEventListener("conversation", (event) => render(JSON.parse(event.data)));
  $("composer").text.focus();
}

async function home() {
  if (stream) stream.close();
  current = null;
  const conversations = await api("GET", "/conversations");
  const list = $("conversations");
  list.replaceChildren();
  for (const conversation of conversations) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `#${conversation.id}`;
    const who = element("div", "who", conversation.last ? conversation.last.name : "");
    if (CLOSED[conversation.status]) who.append(" ", element("span", "closed-tag", "· Resolved"));
    const last = conversation.last;
    // Parsed, not put in the page: a picture in it is not fetched for a preview.
    const text = last ? new DOMParser().parseFromString(last.html, "text/html").body.textContent : "";
    const files = last && last.attachments ? last.attachments.map((a) => a.name).join(", ") : "";
    const preview = element("div", "preview", text.trim() || (files ? `📎 ${files}` : ""));
    link.append(who, preview);
    item.append(link);
    list.append(item);
  }
  show("home");
}

async function send(payload) {
  const form = $("composer");
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  showError("");
  pending = true;
  if (payload.text) {
    $("messages").append(messageItem({ id: "sending", from: "you", name: "You", html: escapeText(payload.text) }));
  }
  $("typing").textContent = "Fin is typing…";
  $("typing").hidden = false;
  try {
    let conversation;
    if (current === null) {
      conversation = await api("POST", "/conversations", payload);
      history.replaceState(null, "", `#${conversation.id}`);
      open(conversation.id);
    } else {
      conversation = await api("POST", `/conversations/${encodeURIComponent(current)}/messages`, payload);
    }
    form.text.value = "";
    pending = false;
    $("messages").querySelector('[data-id="sending"]')?.remove();
    render(conversation);
  } catch (error) {
    pending = false;
    $("messages").querySelector('[data-id="sending"]')?.remove();
    $("typing").hidden = true;
    showError(error.message);  // the text stays in the box: nothing is lost
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function escapeText(text) {
  const p = document.createElement("p");
  p.textContent = text;
  return p.outerHTML;
}

async function route() {
  showError("");
  const id = decodeURIComponent(location.hash.slice(1));
  if (id === "new") open(null);
  else if (id) open(id);
  else await home();
}

document.addEventListener("DOMContentLoaded", async () => {
  $("intro-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await api("POST", "/visitor", { name: form.name.value, email: form.email.value });
      location.hash = "new";
      await route();
    } catch (error) { showError(error.message); }
  });
  $("new-conversation").addEventListener("click", () => { location.hash = "new"; });
  $("back").addEventListener("click", () => { location.hash = ""; });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = event.target.text.value;
    if (text.trim()) send({ text });
  });
  $("composer").text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("composer").requestSubmit(); }
  });
  $("ask-person").addEventListener("click", () => send({ ask_for_a_person: true }));
  window.addEventListener("hashchange", () => route().catch((error) => showError(error.message)));
  try {
    // Nothing that needs a visitor is asked for before the server says there is one.
    if (await api("GET", "/visitor")) await route(); else show("intro");
  } catch (error) {
    if (error.status === 401) show("intro"); else showError(error.message);
  }
});
