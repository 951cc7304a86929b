// findesk inbox: keyboard shortcuts (press ? for the list). Never while typing in a field,
// except Ctrl/⌘+Enter, which sends the message being written. Every action is also a button.
(() => {
  "use strict";
  if (!document.querySelector('meta[name="csrf-token"]')) return; // the sign-in page

  const SHORTCUTS = [
    ["j / k", "Next / previous conversation in the list"],
    ["Enter", "Open the selected conversation"],
    ["r", "Write a reply"],
    ["n", "Write a private note"],
    ["t", "Take over"],
    ["a", "Assign"],
    ["e", "Resolve"],
    ["z", "Snooze: choose how long, then Enter"],
    ["/", "Search"],
    ["Ctrl / ⌘ + Enter", "Send what you are writing"],
    ["?", "Show this list"],
  ];

  function typing(target) {
    return target instanceof Element &&
      (target.closest("input, textarea, select, [contenteditable=true]") !== null);
  }

  // --- the list: j and k move the focus over the conversations' links; Enter opens -------
  function move(step) {
    const links = [...document.querySelectorAll(".conversation-list .conversation-item > a")];
    if (!links.length) return;
    const at = links.indexOf(document.activeElement);
    const selected = links.findIndex((a) => a.parentElement.classList.contains("selected"));
    const from = at >= 0 ? at : selected;
    const next = from < 0 ? (step > 0 ? 0 : links.length - 1)
      : Math.min(links.length - 1, Math.max(0, from + step));
    links[next].focus();
    links[next].scrollIntoView({ block: "nearest" });
  }

  // --- the open conversation --------------------------------------------------------------
  function write(visibility) {
    const form = document.querySelector("form.composer");
    if (!form) return;
    const kind = form.querySelector(`input[name=visibility][value=${visibility}]`);
    if (kind) kind.checked = true;
    (form.querySelector("#reply-editor") || form.querySelector("textarea[name=body]"))?.focus();
  }

  function press(selector) {
    const button = document.querySelector(selector);
    if (button) button.click();
  }

  // --- the cheat sheet --------------------------------------------------------------------
  let sheet = null;
  function cheatSheet() {
    if (!sheet) {
      sheet = document.createElement("dialog");
      sheet.id = "shortcuts";
      sheet.setAttribute("aria-labelledby", "shortcuts-title");
      const title = document.createElement("h2");
      title.id = "shortcuts-title";
      title.textContent = "Keyboard shortcuts";
      const list = document.createElement("dl");
      for (const [keys, what] of SHORTCUTS) {
        const key = document.createElement("dt");
        for (const [i, part] of keys.split(" ").entries()) {
          if (["/", "+"].includes(part) && i > 0) key.append(` ${part} `);
          else { const kbd = document.createElement("kbd"); kbd.textContent = part; key.append(kbd); }
        }
        const meaning = document.createElement("dd");
        meaning.textContent = what;
        list.append(key, meaning);
      }
      const close = document.createElement("button");
      close.type = "button";
      close.textContent = "Close";
      close.addEventListener("click", () => sheet.close());
      sheet.append(title, list, close);
      document.body.append(sheet);
    }
    if (sheet.open) sheet.close(); else sheet.showModal();
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      const form = event.target instanceof Element && event.target.closest("form.composer");
      if (form) { event.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (event.key === "Enter" && event.target instanceof Element && event.target.matches("#snooze-for")) {
      // A select does not submit its form on Enter: this one does, after z picked it.
      event.preventDefault();
      event.target.form.requestSubmit();
      return;
    }
    if (typing(event.target) || sheet?.open && event.key !== "?") return;
    const actions = {
      j: () => move(1),
      k: () => move(-1),
      r: () => write("public"),
      n: () => write("private"),
      t: () => press("form[action*='/take-over'] button[type=submit]"),
      a: () => document.querySelector("#assign-to")?.focus(),
      e: () => press("button[name=status][value=resolved]"),
      z: () => document.querySelector("#snooze-for")?.focus(),
      "/": () => document.querySelector("#search-q")?.focus(),
      "?": cheatSheet,
    };
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  });
})();
