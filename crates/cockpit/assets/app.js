// The dashboard's only script: live updates of the overview by
// server-sent events, and the emergency stop / resume dialog. The token is
// typed into the dialog and sent in the Authorization header only; it is
// never stored.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const usd = (x) => (x === null || x === undefined) ? "–" : "$" + Number(x).toFixed(2);
  const txt = (x) => (x === null || x === undefined) ? "–" : (Array.isArray(x) ? x.map(txt).join(", ") : (typeof x === "object" ? JSON.stringify(x) : String(x)));
  const num = (x) => (typeof x === "number" && !Number.isInteger(x)) ? x.toFixed(2) : txt(x);

  function setText(id, value) { const el = $(id); if (el) { el.textContent = value; } }

  function renderPositions(rows) {
    const body = document.querySelector("#positions tbody");
    if (!body) { return; }
    body.replaceChildren();
    const cols = ["trade_id", "contract", "contracts", "dte", "days_held", "entry_premium_usd", "mark_usd",
      "unrealized_pnl_usd", "profit_pct", "delta", "theta_per_day_usd", "alerts"];
    for (const r of rows) {
      const tr = document.createElement("tr");
      for (const c of cols) {
        const td = document.createElement("td");
        td.textContent = c === "alerts" ? r.alerts.map((a) => a.kind).join(", ") || "–" : num(r[c]);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  function renderBreakers(rows) {
    const body = document.querySelector("#breakers tbody");
    if (!body) { return; }
    body.replaceChildren();
    for (const b of rows) {
      const tr = document.createElement("tr");
      tr.className = b.tripped ? "tripped" : "armed";
      const cells = [b.name, b.tripped ? "TRIPPED" : "armed", Math.round(b.headroom * 100) + "%", b.explanation];
      for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
      body.appendChild(tr);
    }
  }

  function render(s) {
    const state = s.trading_state.state;
    const el = $("state");
    if (el) { el.textContent = state.toUpperCase(); el.className = "state state-" + state; }
    setText("state-cause", s.trading_state.cause);
    setText("net-liq", usd(s.account && s.account.net_liq_usd));
    setText("today-pnl", usd(s.today_pnl_usd));
    setText("margin-use", s.account ? s.account.margin_utilization_pct.toFixed(2) + "%" : "–");
    setText("open-trades", txt(s.trades.open));
    setText("working-orders", txt(s.orders_working));
    setText("last-cycle", txt(s.engine && s.engine.last_cycle));
    setText("broker", s.broker_connected ? "connected" : "disconnected");
    setText("positions-as-of", txt(s.positions_as_of));
    renderBreakers(s.breakers);
    renderPositions(s.positions);
    const pending = $("pending");
    if (pending) {
      pending.replaceChildren();
      for (const p of s.pending_requests) { const li = document.createElement("li"); li.textContent = p; pending.appendChild(li); }
    }
    const ov = $("overview");
    if (ov) { ov.dataset.time = s.time; ov.dataset.updates = String(Number(ov.dataset.updates || "0") + 1); }
  }

  if ($("overview") && window.EventSource) {
    const events = new EventSource("/api/events");
    events.addEventListener("status", (e) => render(JSON.parse(e.data)));
  }

  let mode = "stop";
  function open(which) {
    mode = which;
    setText("control-title", which === "stop" ? "Emergency stop" : "Resume trading");
    setText("control-explain", which === "stop"
      ? "Halts trading now; the engine cancels every working order at its next cycle. With flatten it also closes every position."
      : "Back to active trading at the engine's next cycle.");
    $("flatten-label").hidden = which !== "stop";
    $("control-dialog").showModal();
  }

  async function confirm() {
    const reason = $("control-reason").value.trim();
    const token = $("control-token").value;
    if (!reason) { setText("control-result", "A reason is required."); return; }
    const body = mode === "stop" ? { reason: reason, flatten: $("control-flatten").checked } : { reason: reason };
    const path = mode === "stop" ? "/api/emergency-stop" : "/api/resume";
    $("control-token").value = "";
    $("control-dialog").close();
    try {
      const r = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token },
        body: JSON.stringify(body),
      });
      const j = await r.json().catch(() => ({}));
      setText("control-result", r.ok
        ? (mode === "stop" ? "Halted" : "Resumed") + ": request #" + j.request_id + " queued for the engine."
        : "Refused (" + r.status + "): " + (j.error || r.statusText));
      document.body.dataset.lastControlStatus = String(r.status);
    } catch (err) {
      setText("control-result", "Failed: " + err);
    }
  }

  if ($("stop-button")) {
    $("stop-button").addEventListener("click", () => open("stop"));
    $("resume-button").addEventListener("click", () => open("resume"));
    $("control-cancel").addEventListener("click", () => $("control-dialog").close());
    $("control-confirm").addEventListener("click", confirm);
  }
})();
