// findesk inbox: SLA chips count down without reloading. Each chip with data-due (an ISO
// timestamp) and data-target-seconds is rewritten every few seconds: "First response in 12 min",
// "First response overdue 5 min"; data-sla turns "due" under a quarter of the target left and
// "breached" past it. Chips swapped in by live updates are found on the next tick.
(() => {
  "use strict";

  // Whole minutes: rounded up for the time left, down for the time overdue (as the server).
  function span(seconds, up) {
    const minutes = (up ? Math.ceil : Math.floor)(Math.max(seconds, 0) / 60);
    if (minutes < 1) return "<1 min";
    if (minutes < 60) return `${minutes} min`;
    if (minutes < 48 * 60) {
      const h = Math.floor(minutes / 60), m = minutes % 60;
      return m ? `${h} h ${m} min` : `${h} h`;
    }
    const d = Math.floor(minutes / 1440), h = Math.floor((minutes % 1440) / 60);
    return h ? `${d} d ${h} h` : `${d} d`;
  }

  function update(chip, now) {
    const due = Date.parse(chip.dataset.due || "");
    if (Number.isNaN(due)) return;
    const target = Number(chip.dataset.targetSeconds) || 0;
    const label = chip.dataset.label || "SLA";
    const left = (due - now) / 1000;
    let state, text;
    if (left <= 0 || chip.dataset.sla === "breached") {
      state = "breached";
      text = `${label} overdue ${span(-left, false)}`;
    } else {
      state = left < 0.25 * target ? "due" : "ok";
      text = `${label} in ${span(left, true)}`;
    }
    if (chip.dataset.sla !== state) chip.dataset.sla = state;
    if (chip.textContent !== text) chip.textContent = text;
  }

  function tick() {
    const now = Date.now();
    for (const chip of document.querySelectorAll("[data-sla][data-due]")) update(chip, now);
  }

  tick();
  setInterval(tick, 5000);
})();
