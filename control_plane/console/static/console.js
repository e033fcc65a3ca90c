// Sluice console: the little script the pages need. Copy buttons, and the audit
// log's live rows (server-sent events). Everything else works without it.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    button.textContent = "Copied";
  }, () => {
    button.textContent = "Select and copy the text";
  });
});

// The audit log's live rows: the page names its stream in `data-live`; each `row`
// event is one table row, put at the top. `end`: the server closed the stream for
// good (the session ended); `reload`: more arrived than one update sends.
(() => {
  const status = document.querySelector("[data-live]");
  if (!status || !window.EventSource) return;
  const rows = document.getElementById(status.dataset.rows);
  const table = document.getElementById("audit-table");
  const source = new EventSource(status.dataset.live);
  const say = (text) => { status.textContent = text; };
  source.addEventListener("open", () => say("Live: new events appear at the top as they happen."));
  source.addEventListener("row", (event) => {
    const position = event.lastEventId;
    if (position && document.getElementById("event-" + position)) return;
    rows.insertAdjacentHTML("afterbegin", event.data);
    if (table) table.hidden = false;
    const empty = document.getElementById(status.dataset.empty);
    if (empty) empty.remove();
  });
  source.addEventListener("end", (event) => {
    source.close();
    say("Live updates stopped. " + event.data);
  });
  source.addEventListener("reload", () => {
    source.close();
    say("Many events arrived at once. Reload the page to see them all.");
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      say("Live updates stopped. Reload the page to start them again.");
    } else {
      say("Live updates interrupted; reconnecting…");
    }
  });
})();
