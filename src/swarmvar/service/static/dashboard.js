// swarmvar live dashboard: plain JavaScript, no dependencies, no network beyond this server.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.hash.slice(1));
  let key = params.get("key") || sessionStorage.getItem("swarmvar-key") || "";
  let portfolio = params.get("portfolio") || "";
  let points = [];
  let source = null;
  // losses in percent of value, 2 decimals as the command line's tables show them (2.31%);
  // the exact numbers are in the API's answers and the CSV history
  const pct = (x) => (100 * x).toFixed(2) + "%";
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ headers: { "X-API-Key": key } }, opts || {}));
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.type + ": " + body.error.message : r.status);
    return body;
  }

  function status(text, bad) { $("status").textContent = text; $("status").className = bad ? "bad" : "muted"; }

  function renderLevels(p) {
    if (!p) return;
    $("levels").innerHTML = p.alphas.map((a, k) =>
      `<div class="card"><div class="muted">VaR ${(100 * a).toFixed(1)}%</div>` +
      `<div class="big" id="var-${k}" data-seq="${p.seq}">${pct(p.var[k])}</div>` +
      `<div class="muted">[${pct(p.var_interval[k][0])}, ${pct(p.var_interval[k][1])}]</div>` +
      `<div>ES <b id="es-${k}">${pct(p.es[k])}</b></div></div>`).join("");
    $("asof").textContent = "beat " + p.seq + " as of " + p.date;
  }

  function draw() {
    const c = $("chart"), g = c.getContext("2d"), W = c.width, H = c.height, pad = 40;
    g.clearRect(0, 0, W, H);
    const pts = points.slice(-400);
    if (!pts.length) return;
    let hi = 0;
    for (const p of pts) {
      hi = Math.max(hi, p.var_interval[0] ? p.var_interval[0][1] : 0, p.es[0] || 0,
        p.realized === null ? 0 : -p.realized);
    }
    hi = hi * 1.1 || 0.01;
    // slot i holds beat i's realized loss; beat i's forecast is for the next slot, so a
    // breach sits under (above) the VaR line that was in force when it happened
    const x = (i) => pad + (W - 2 * pad) * i / pts.length;
    const xf = (i) => x(i + 1);
    const y = (v) => H - pad - (H - 2 * pad) * Math.max(v, 0) / hi;
    g.strokeStyle = "#ccc"; g.fillStyle = "#7a8594"; g.font = "11px sans-serif";
    for (let t = 0; t <= 4; t++) {
      const v = hi * t / 4; g.beginPath(); g.moveTo(pad, y(v)); g.lineTo(W - pad, y(v)); g.stroke();
      g.fillText((100 * v).toFixed(2) + "%", 2, y(v) + 4);
    }
    g.fillStyle = "rgba(47,111,219,0.18)"; g.beginPath();
    pts.forEach((p, i) => g.lineTo(xf(i), y(p.var_interval[0][1])));
    for (let i = pts.length - 1; i >= 0; i--) g.lineTo(xf(i), y(pts[i].var_interval[0][0]));
    g.fill();
    const line = (f, color, dash) => {
      g.strokeStyle = color; g.setLineDash(dash); g.lineWidth = 1.5; g.beginPath();
      pts.forEach((p, i) => (i ? g.lineTo : g.moveTo).call(g, xf(i), y(f(p)))); g.stroke(); g.setLineDash([]);
    };
    line((p) => p.var[0], "#2f6fdb", []);
    line((p) => p.es[0], "#9b51e0", [5, 4]);
    pts.forEach((p, i) => {
      if (p.realized === null) return;
      const breach = p.breaches.length > 0 && p.breaches[0];
      g.fillStyle = breach ? "#e0393e" : "#555";
      g.beginPath(); g.arc(x(i), y(-p.realized), breach ? 4 : 2, 0, 7); g.fill();
    });
  }

  async function refreshDetails() {
    try {
      const v = await api(`/v1/portfolios/${encodeURIComponent(portfolio)}/var`);
      const l = v.levels[0];
      $("weights").innerHTML = l ? Object.entries(l.weights).sort((a, b) => b[1] - a[1])
        .map(([a, w]) => `<tr><td>${esc(a)}</td><td>${w.toFixed(3)}</td></tr>`).join("") : "";
      $("availability").textContent = l ? `availability ${l.available}/${l.total}` +
        (l.degraded ? " (degraded)" : "") + ` - ${l.method}` : "no consensus";
      const all = await api(`/v1/portfolios/${encodeURIComponent(portfolio)}/decisions?limit=500`);
      const d = all.filter((x) => x.action !== "noop").slice(-8);  // noop: nothing to show
      $("decisions").innerHTML = d.length ? d.reverse().map((x) =>
        `<tr><td>${x.seq}</td><td>${esc(x.action)}</td><td>${esc(x.agents.join(", "))}</td>` +
        `<td>${esc(x.reason)}</td></tr>`).join("") : "<tr><td class='muted'>none yet</td></tr>";
      const h = await api("/v1/ledger/head");
      $("head").innerHTML = `<dt>size</dt><dd id="head-size">${h.size}</dd>` +
        `<dt>root</dt><dd>${esc(h.root)}</dd><dt>signed</dt><dd>${esc(h.timestamp)}</dd>`;
    } catch (e) { status(String(e), true); }
  }

  function onBeat(ev) {
    const p = JSON.parse(ev.data);
    if (points.length && points[points.length - 1].seq >= p.seq) return;
    points.push(p);
    if (points.length > 5000) points.shift();
    renderLevels(p); draw(); refreshDetails();
  }

  async function connect() {
    if (source) source.close();
    sessionStorage.setItem("swarmvar-key", key);
    try {
      const list = await api("/v1/portfolios");
      $("portfolio").innerHTML = list.map((p) => `<option>${esc(p.name)}</option>`).join("");
      if (!portfolio && list.length) portfolio = list[0].name;
      $("portfolio").value = portfolio;
      points = await api(`/v1/portfolios/${encodeURIComponent(portfolio)}/history?limit=1000`);
      const v = await api(`/v1/portfolios/${encodeURIComponent(portfolio)}/var`);
      const last = points.length ? points[points.length - 1] : null;
      if (last) renderLevels(last); else renderLevels({ seq: v.seq, date: v.as_of,
        alphas: v.levels.map((l) => l.alpha), var: v.levels.map((l) => l.var),
        es: v.levels.map((l) => l.es), var_interval: v.levels.map((l) => l.var_interval) });
      draw(); refreshDetails();
      const since = last ? last.seq : 0;
      source = new EventSource(`/v1/portfolios/${encodeURIComponent(portfolio)}/events?since=${since}&key=${encodeURIComponent(key)}`);
      source.addEventListener("beat", onBeat);
      source.onopen = () => { status("live: " + portfolio); document.body.dataset.live = "1"; };
      source.onerror = () => status("reconnecting...", true);
    } catch (e) { status(String(e), true); }
  }

  $("login").addEventListener("submit", (e) => {
    e.preventDefault(); key = $("key").value || key; portfolio = $("portfolio").value || portfolio; connect();
  });
  $("portfolio").addEventListener("change", () => { portfolio = $("portfolio").value; connect(); });
  $("verify").addEventListener("click", async () => {
    $("verified").textContent = "verifying...";
    try {
      const v = await api("/v1/ledger/verify", { method: "POST", headers: { "X-API-Key": key } });
      $("verified").innerHTML = v.ok ? `<span class="ok">verified ${v.size} entries</span>`
        : `<span class="bad">broken at entry ${v.first_bad}: ${esc(v.reason)}</span>`;
    } catch (e) { $("verified").innerHTML = `<span class="bad">${esc(e)}</span>`; }
  });
  $("key").value = key;
  if (key) connect();
})();
