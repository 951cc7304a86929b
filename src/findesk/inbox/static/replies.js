// findesk inbox: saved replies in the composer. "/" at the start of the message or of a word
// opens the list of saved replies, filtered by what follows it; arrow keys move, Enter (or
// Tab) inserts the reply as rendered for this conversation by the server (placeholders filled),
// Esc closes. Runs after inbox.js, which makes the composer's editor. Without JavaScript, saved
// replies are in the agent API and on the Saved replies page.
(() => {
  "use strict";
  const form = document.querySelector("form.composer[data-render-url]");
  const editor = form?.querySelector("#reply-editor");
  if (!form || !editor) return;

  const list = document.createElement("ul");
  list.id = "saved-reply-list";
  list.className = "saved-reply-list";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Saved replies");
  list.hidden = true;
  const status = document.createElement("p");
  status.className = "saved-reply-status visually-hidden";
  status.setAttribute("role", "status");
  editor.insertAdjacentElement("afterend", list);
  list.insertAdjacentElement("afterend", status);
  editor.setAttribute("aria-haspopup", "listbox");
  editor.setAttribute("aria-autocomplete", "list");
  editor.setAttribute("aria-controls", list.id);

  let replies = null; // loaded on the first "/"
  let shown = [];
  let active = 0;
  let trigger = null; // {node, start, query}: the "/word" being typed

  async function load() {
    if (replies) return replies;
    const response = await fetch(form.dataset.savedRepliesUrl, { headers: { Accept: "application/json" } });
    replies = response.ok ? await response.json() : [];
    return replies;
  }

  // The "/word" just before the caret, in the text node the caret is in.
  function findTrigger() {
    const selection = window.getSelection();
    if (!selection.rangeCount || !selection.isCollapsed) return null;
    const node = selection.anchorNode;
    if (!node || node.nodeType !== Node.TEXT_NODE || !editor.contains(node)) return null;
    const before = node.data.slice(0, selection.anchorOffset);
    const match = /(^|\s)\/([^\s/]*)$/.exec(before);
    if (!match) return null;
    return { node, start: selection.anchorOffset - match[2].length - 1, query: match[2] };
  }

  function close() {
    list.hidden = true;
    list.replaceChildren();
    editor.removeAttribute("aria-activedescendant");
    trigger = null;
    shown = [];
  }

  function highlight(index) {
    active = index;
    [...list.children].forEach((item, i) => item.setAttribute("aria-selected", String(i === index)));
    const current = list.children[index];
    if (current && shown.length) {
      editor.setAttribute("aria-activedescendant", current.id);
      current.scrollIntoView({ block: "nearest" });
    }
  }

  function show() {
    const query = trigger.query.toLowerCase();
    shown = replies.filter((r) => r.title.toLowerCase().includes(query));
    list.replaceChildren(...shown.map((reply, i) => {
      const item = document.createElement("li");
      item.id = `saved-reply-option-${i}`;
      item.setAttribute("role", "option");
      item.dataset.replyId = reply.id;
      const title = document.createElement("span");
      title.className = "title";
      title.textContent = reply.title;
      const scope = document.createElement("span");
      scope.className = "badge";
      scope.textContent = reply.shared ? "team" : "only me";
      item.append(title, " ", scope);
      item.addEventListener("mousedown", (event) => { event.preventDefault(); pick(i); });
      return item;
    }));
    if (!shown.length) {
      const empty = document.createElement("li");
      empty.setAttribute("role", "option");
      empty.setAttribute("aria-disabled", "true");
      empty.className = "empty";
      empty.textContent = replies.length ? "No saved reply matches." : "No saved replies yet.";
      list.append(empty);
    }
    list.hidden = false;
    highlight(0);
    status.textContent = `${shown.length} saved ${shown.length === 1 ? "reply" : "replies"}`;
  }

  async function update() {
    const found = findTrigger();
    if (!found) { if (trigger) close(); return; }
    trigger = found;
    await load();
    if (trigger === found) show();
  }

  async function pick(index) {
    const reply = shown[index];
    const at = trigger;
    if (!reply || !at) return;
    close();
    const response = await fetch(`${form.dataset.renderUrl}${encodeURIComponent(reply.id)}/render`, {
      headers: { Accept: "application/json" },
    });
    if (!response.ok) { status.textContent = "The saved reply could not be inserted."; return; }
    const rendered = await response.json();
    editor.focus();
    const range = document.createRange();
    if (at.node.isConnected && at.node.data[at.start] === "/") {
      // The "/word" goes; the reply takes its place.
      const end = Math.min(at.start + 1 + at.query.length, at.node.length);
      range.setStart(at.node, at.start);
      range.setEnd(at.node, end);
    } else {
      range.selectNodeContents(editor);
      range.collapse(false);
    }
    // Inserted as nodes, not with execCommand("insertHTML"), which adds inline styles that the
    // Content-Security-Policy refuses. One paragraph joins the line being written.
    const parsed = new DOMParser().parseFromString(rendered.html, "text/html").body;
    const only = parsed.children.length === 1 && parsed.firstElementChild.tagName === "P" ? parsed.firstElementChild : parsed;
    const nodes = [...only.childNodes];
    range.deleteContents();
    const fragment = document.createDocumentFragment();
    fragment.append(...nodes);
    range.insertNode(fragment);
    const selection = window.getSelection();
    if (nodes.length) {
      range.setStartAfter(nodes[nodes.length - 1]);
      range.collapse(true);
    }
    selection.removeAllRanges();
    selection.addRange(range);
    editor.dispatchEvent(new Event("input", { bubbles: true })); // typing signal, as when typed
    status.textContent = `Inserted “${reply.title}”.`;
  }

  editor.addEventListener("input", () => { update(); });
  editor.addEventListener("blur", () => { setTimeout(() => { if (document.activeElement !== editor) close(); }, 150); });
  editor.addEventListener("keydown", (event) => {
    if (list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!shown.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + shown.length) % shown.length);
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.ctrlKey && !event.metaKey) {
      if (!shown.length) { close(); return; }
      event.preventDefault();
      pick(active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close();
    }
  });
})();
