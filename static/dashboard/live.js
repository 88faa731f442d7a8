// The live event stream (ws /ws/stream, the session authenticates it). It resumes after the
// newest event the page was rendered with, shows each event in the ticker, and re-fetches the
// server-rendered fragments that asked for it: data-live-refresh="drift.report.created,models.*"
// with data-live-url="<the fragment's URL>". No rendering here: the server renders fragments.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("live-config").textContent);
  const status = document.getElementById("live-status");
  const ticker = document.getElementById("live-ticker");
  let lastId = config.last_event_id;
  let delay = 1000;
  let reconnecting = false;
  const timers = new Map();
  const seen = new Set();

  function matches(patterns, type) {
    return patterns.split(",").some(function (p) {
      p = p.trim();
      return p === "*" || p === type || (p.endsWith(".*") && type.startsWith(p.slice(0, -1)));
    });
  }

  function refresh(element) {
    clearTimeout(timers.get(element));
    timers.set(element, setTimeout(function () {
      fetch(element.dataset.liveUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          element.innerHTML = html;
          if (window.tsCharts) window.tsCharts.plotWithin(element);
          element.dataset.refreshed = String(Number(element.dataset.refreshed || 0) + 1);
        })
        .catch(function () { /* the next event or a reload brings it */ });
    }, 250));
  }

  function show(event) {
    const line = document.createElement("span");
    line.className = "flash";
    const when = new Date(event.created_at).toLocaleTimeString();
    line.textContent = "Live · " + when + " · " + event.type + (event.subject ? " · " + event.subject : "");
    ticker.replaceChildren(line);
  }

  function setState(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // After a drop, ask for the full state first: what happened while we were away may not all
    // be in replayable events (a Redis outage drops live ones), so every live fragment redraws.
    const query = "?last_event_id=" + lastId + (reconnecting ? "&snapshot=1" : "");
    const socket = new WebSocket(scheme + "://" + location.host + config.path + query);
    socket.onopen = function () { setState("open", "live"); delay = 1000; };
    socket.onmessage = function (message) {
      const event = JSON.parse(message.data);
      if (event.type === "snapshot") {
        document.querySelectorAll("[data-live-refresh]").forEach(refresh);
        return;
      }
      if (typeof event.id !== "number") return;  // pong
      if (seen.has(event.id)) return;  // a replay after a reconnect may repeat one
      seen.add(event.id);
      lastId = Math.max(lastId, event.id);
      show(event);
      document.querySelectorAll("[data-live-refresh]").forEach(function (element) {
        if (matches(element.dataset.liveRefresh, event.type)) refresh(element);
      });
    };
    socket.onclose = function () {
      reconnecting = true;
      setState("closed", "reconnecting…");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }

  connect();
})();
