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
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.error || response.statusText), { status: response.status });
  return data;
}

function showError(message) {
  const error = $("error");
  error.textContent = message || "";
  error.hidden = !message;
}

function show(section) {
  for (const id of ["intro", "home", "thread"]) $(id).hidden = id !== section;
}

function messageItem(message) {
  const item = document.createElement("li");
  item.className = `message from-${message.from}`;
  item.dataset.id = message.id;
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = message.name;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  bubble.innerHTML = message.html;  // sanitised by the server
  for (const link of bubble.querySelectorAll("a")) { link.target = "_blank"; link.rel = "noopener noreferrer"; }
  item.append(name, bubble);
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
  status.hidden = conversation.owner !== "waiting" && conversation.owner !== "human";
  const typing = $("typing");
  const who = conversation.typing || (pending && conversation.owner !== "human" && conversation.owner !== "waiting" ? "Fin" : null);
  typing.textContent = who ? `${who} is typing…` : "";
  typing.hidden = !who;
  $("ask-person").hidden = conversation.owner !== "fin" && conversation.owner !== null;
  window.scrollTo(0, document.body.scrollHeight);
}

function open(conversationId) {
  if (stream) stream.close();
  current = conversationId;
  $("messages").replaceChildren();
  show("thread");
  if (conversationId === null) {
    render({ messages: [], owner: null, typing: null });
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
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = conversation.last ? conversation.last.name : "";
    const preview = document.createElement("div");
    preview.className = "preview";
    const scratch = document.createElement("div");
    scratch.innerHTML = conversation.last ? conversation.last.html : "";
    preview.textContent = scratch.textContent;
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
    await api("GET", "/visitor");
    await route();
  } catch (error) {
    if (error.status === 401) show("intro"); else showError(error.message);
  }
});
