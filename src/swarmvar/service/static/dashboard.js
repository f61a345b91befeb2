// swarmvar live dashboard: plain JavaScript, no dependencies, no network beyond this server.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.hash.slice(1));
  let key = params.get("key") || sessionStorage.getItem("swarmvar-key") || "";
  let portfolio = params.get("portfolio") || "";
  let points = [];
  let source = null;
  let alphas = [];  // the levels served (from the latest beat with a consensus)
  let level = 0;    // index in alphas of the level the chart and the weights show
  let chosen = null;  // the level picked (its alpha): kept when the levels served change
  let latest = null;  // the latest beat with a consensus (the cards show it)
  let horizon = null;  // days ahead of the forecasts (from /var)
  let geo = null;   // the chart's last layout, for the hover readout
  let hover = null;  // the pointer's last clientX over the chart (null: not over it)
  const CHART_BEATS = 400;  // the chart shows the latest beats only
  // a details request with no answer by then is given up (the next beat asks again); a
  // page may set window.SWARMVAR_DETAIL_MS (the tests do, to wait less)
  const detailMs = () => window.SWARMVAR_DETAIL_MS > 0 ? window.SWARMVAR_DETAIL_MS : 15000;
  // posterior mass of the credible intervals, filled in by the server (empty if unknown)
  const massMeta = document.querySelector("meta[name='swarmvar-interval-mass']");
  const mass = massMeta ? parseFloat(massMeta.content) : NaN;
  const band = Number.isFinite(mass) ? `${+(100 * mass).toFixed(1)}% credible` : "credible";
  // losses in percent of value, 2 decimals as the command line's tables show them (2.31%);
  // the exact numbers are in the API's answers and the CSV history
  const pct = (x) => (100 * x).toFixed(2) + "%";
  const lvl = (a) => +(100 * a).toFixed(2) + "%";  // 0.99 -> 99%, 0.975 -> 97.5%
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");

  // An answer's JSON, or an Error saying what went wrong: its `status` is the HTTP status (0:
  // no answer, the server unreachable), its `retry` the seconds the server asked to wait
  // (Retry-After) or 0. An aborted request throws the AbortError as it is.
  async function api(path, opts) {
    let r;
    try {
      r = await fetch(path, Object.assign({ headers: { "X-API-Key": key } }, opts || {}));
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw Object.assign(new Error(`cannot reach the server (${e.message})`), { status: 0 });
    }
    let body = null;
    try { body = await r.json(); } catch (e) {
      if (e.name === "AbortError") throw e;
    }
    if (r.ok && body !== null) return body;
    throw answerError(r, body);
  }

  // The Error for an answer that is not the one asked for (`body`: its JSON, or null): it
  // names the status and the server's error (type: message) if it gave one; its `status` is
  // the HTTP status, its `retry` the seconds of Retry-After (0 if none).
  function answerError(r, body) {
    const err = new Error(body && body.error
      ? `${r.status} ${body.error.type}: ${body.error.message}`
      : `${r.status} ${r.statusText || "error"}${r.ok ? " with an answer that is not JSON" : ""}`);
    return Object.assign(err, {
      status: r.status, retry: parseFloat(r.headers.get("Retry-After")) || 0 });
  }

  // A failure worth trying again by itself: a network or HTTP one (api()'s, with a
  // `status`) that is no answer, a 5xx or a 429; a 4xx needs the user, and an error of the
  // script itself (a TypeError, say) would only fail again.
  const transient = (e) => typeof (e && e.status) === "number" &&
    (!(e.status >= 400 && e.status < 500) || e.status === 429);
  // what went wrong, as the status line says it: an error of the script itself is named so
  // (and logged to the console), the others by their message
  function failure(e) {
    if (!(e instanceof Error)) return String(e);
    if (e.constructor === Error || "status" in e || e.name === "AbortError") {
      return e.message || String(e);
    }
    console.error(e);
    return `script error: ${e.name}: ${e.message}`;
  }
  // the wait before the n-th try again (from 0): Retry-After if the server gave one, else
  // 2, 4, 8, 16, 30, 30, ... s
  const backoff = (e, n) => 1000 * (e && e.retry > 0 ? e.retry : Math.min(30, 2 ** (n + 1)));
  // a wall-clock time as the status line gives it (local time, HH:MM:SS)
  const clock = (t) => [t.getHours(), t.getMinutes(), t.getSeconds()]
    .map((x) => String(x).padStart(2, "0")).join(":");

  // The status line says what the page is in, from `link` (the event stream's state) and
  // the details' last error: "live" only while the stream is open and delivering (it
  // stayed open liveMs() or brought a beat, and has not gone silent). States: connecting
  // (reading the portfolio), opening (its stream asked for), live, down (the stream dropped,
  // cannot be opened, or went silent: nothing, not even the server's ping, for 3 pings; the
  // browser or the page reopens it), refused (the server answered the stream with an error;
  // the page tries again by itself unless the error needs the user), failed (the portfolio
  // could not be read). body.dataset.live is "1" when live, body.dataset.stream the state
  // (tests read it).
  let link = { state: "idle" };
  let heard = null;  // the last beat the page got, {seq, at}: at is when it came (a Date)
  let detailsError = "";
  const liveMs = () => window.SWARMVAR_LIVE_MS > 0 ? window.SWARMVAR_LIVE_MS : 1000;
  // the server sends a `ping` event every pingMs(): its interval, written into the page by
  // the server (SWARMVAR_PING_MS: a test's own); 0 if unknown (no silence is then told)
  const pingMeta = document.querySelector("meta[name='swarmvar-ping-ms']");
  const servedPing = pingMeta ? parseFloat(pingMeta.content) : NaN;
  const pingMs = () => window.SWARMVAR_PING_MS > 0 ? window.SWARMVAR_PING_MS
    : servedPing > 0 ? servedPing : 0;
  function setLink(state, extra) {
    link = Object.assign({ state }, extra || {});
    paint();
  }
  function paint() {
    const name = portfolio || "...", st = link.state;
    const last = heard ? ` (last beat ${heard.seq} received ${clock(heard.at)})` : "";
    const again = !link.retryAt ? "" : link.retryAt <= Date.now() ? "; reconnecting now"
      : `; trying again at ${clock(link.retryAt)}`;
    const silent = link.silent ? "the event stream went silent (nothing for " +
      `${link.silent / 1000} s); ` : "";
    let text = {
      idle: "not connected: enter an API key",
      connecting: `connecting: ${name}`,
      opening: `connecting: ${name} (opening its event stream)`,
      live: `live: ${name}`,
      down: `not live: ${silent}reconnecting since ${clock(link.since || new Date())}${last}`,
      refused: `not live: the event stream was refused (${link.why})` +
        (link.retryAt ? again : "; press connect to try again") + last,
      failed: `not connected: ${link.why}` +
        (link.retryAt ? again : "; press connect to try again"),
    }[st];
    if (detailsError) text += ` - details: ${detailsError}`;
    $("status").textContent = text;
    const calm = !detailsError && ["live", "connecting", "opening", "idle"].includes(st);
    $("status").className = calm ? "muted" : "bad";
    if (st === "live") document.body.dataset.live = "1"; else delete document.body.dataset.live;
    document.body.dataset.stream = st;
  }

  // a beat with no consensus (NotEnoughAgents: no levels) leaves the levels, the chosen
  // level and the cards as they were; the line above the chart says it had none. The cards
  // are built when the levels change and their numbers updated in place at the other beats,
  // so that a card the keyboard is on keeps the focus.
  function renderLevels(p) {
    if (!p) return;
    if (!p.alphas.length) {
      $("asof").textContent = `beat ${p.seq} as of ${p.date}: no consensus` +
        (latest ? ` (the cards show beat ${latest.seq})` : "");
      noVar(p.seq, `no consensus at beat ${p.seq}`, false);
      return;
    }
    latest = p;
    if (p.alphas.join() !== alphas.join()) {
      alphas = p.alphas.slice();
      level = Math.max(0, alphas.indexOf(chosen));
      $("level-pick").innerHTML = alphas.length < 2 ? "" : alphas.map((a, k) =>
        `<button type="button" role="radio" data-k="${k}">VaR ${lvl(a)}</button>`).join("");
    }
    const built = `${alphas.join()} ${horizon}`;
    if ($("levels").dataset.built !== built) {
      $("levels").dataset.built = built;
      const pickable = alphas.length > 1
        ? ' tabindex="0" role="button" title="show this level in the chart"' : "";
      $("levels").innerHTML = alphas.map((a, k) =>
        `<div class="card" data-k="${k}"${pickable}>` +
        `<div class="muted">${horizon ? horizon + "-day " : ""}VaR ${lvl(a)}, ` +
        `loss in % of value</div><div class="big" id="var-${k}"></div>` +
        `<div class="muted">${band} <span id="iv-${k}"></span></div>` +
        `<div>ES ${lvl(a)} <b id="es-${k}"></b></div></div>`).join("");
    }
    alphas.forEach((a, k) => {
      $("var-" + k).textContent = pct(p.var[k]); $("var-" + k).dataset.seq = String(p.seq);
      $("iv-" + k).textContent = `[${pct(p.var_interval[k][0])}, ${pct(p.var_interval[k][1])}]`;
      $("es-" + k).textContent = pct(p.es[k]);
    });
    $("asof").textContent = "beat " + p.seq + " as of " + p.date;
    showLevel();
  }

  // While no beat of the portfolio had a consensus, the cards' place says so and why, and
  // follows the beats: a beat says it had none, /var's `detail` (read at each beat) why.
  // `same`: the reason may replace the one shown for the same beat (a beat's own does not
  // replace /var's).
  function noVar(seq, why, same) {
    const shown = $("no-consensus");
    if (latest || shown && (same ? +shown.dataset.seq > seq : +shown.dataset.seq >= seq)) {
      return;
    }
    $("levels").innerHTML = `<p class="muted" id="no-consensus" data-seq="${seq}">no VaR yet` +
      (why ? `: ${esc(why)}` : "") + "</p>";
  }

  // the chart's title, legend, level buttons and cards follow the chosen level
  function showLevel() {
    const a = alphas.length ? lvl(alphas[level]) : "";
    $("chart-title").textContent = alphas.length
      ? `VaR ${a} with ${band} band, ES ${a} and realized losses` : "VaR and ES vs realized losses";
    $("legend").innerHTML = alphas.length ? [
      ["var", `VaR ${a}`], ["band", `${band} band of the VaR`], ["es", `ES ${a}`],
      ["loss", "realized loss (gains drawn at 0)"], ["breach", `breach (loss above the VaR ${a})`],
    ].map(([c, t]) => `<span class="item"><span class="sw ${c}"></span>${t}</span>`).join("") : "";
    for (const b of $("level-pick").querySelectorAll("button")) {
      b.setAttribute("aria-checked", String(+b.dataset.k === level));
    }
    for (const c of $("levels").querySelectorAll(".card")) {
      const on = alphas.length > 1 && +c.dataset.k === level;
      c.classList.toggle("on", on);
      if (alphas.length > 1) c.setAttribute("aria-pressed", String(on));
    }
  }

  function pick(k) {
    if (!(k >= 0 && k < alphas.length) || k === level) return;
    level = k; chosen = alphas[k]; showLevel(); draw(); refreshDetails(true);
  }

  // the smallest of 1, 2, 5 times a power of ten that is at least x
  function niceStep(x) {
    const e = Math.pow(10, Math.floor(Math.log10(x)));
    for (const m of [1, 2, 5, 10]) if (m * e >= x * (1 - 1e-9)) return m * e;
    return 10 * e;
  }

  // Every beat keeps its slot on x, in order: slot i holds beat i's realized loss (a dot at
  // its middle), and beat i's forecast is drawn as a step over slot i + 1, the day it is in
  // force for, so a breach sits under (above) the VaR line that was in force when it
  // happened; the last slot is the next day, under the latest forecast. A beat with no
  // consensus keeps its slot and its loss dot; the VaR, ES and band break over the next slot.
  function draw() {
    const c = $("chart"), box = c.parentElement, dpr = window.devicePixelRatio || 1;
    const W = box.clientWidth, H = box.clientHeight;
    c.width = Math.round(W * dpr); c.height = Math.round(H * dpr);
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    g.font = "12px system-ui, sans-serif";
    const k = level, a = alphas[k];
    const pts = points.slice(-CHART_BEATS), n = pts.length;
    // the beat before the drawn ones: its forecast is in force over slot 0
    const prev = points.length > n && n ? points[points.length - n - 1] : null;
    // the chosen level's index in a beat (-1: none, as at a beat with no consensus)
    const at = (p) => a === undefined ? -1 : p.alphas.indexOf(a);
    c.dataset.level = String(k);
    geo = null;
    if (!n) {
      g.fillStyle = "#66717f"; g.fillText("no beats yet", 60, H / 2);
      c.dataset.xticks = "[]"; c.dataset.yticks = "[]"; c.dataset.slots = "[]";
      $("tip").hidden = true;
      return;
    }
    const L = 64, R = 16, T = 26, B = 40;  // plot margins: y labels left, dates below
    let hi = 0;
    // fc[s]: the beat whose forecast is drawn over slot s (null: none)
    const fc = [prev && prev.seq === pts[0].seq - 1 && at(prev) >= 0 ? prev : null];
    for (const p of pts) {
      const j = at(p);
      if (p.realized !== null) hi = Math.max(hi, -p.realized);
      fc.push(j >= 0 ? p : null);
    }
    for (const f of fc) {
      if (f) hi = Math.max(hi, f.var_interval[at(f)][1], f.es[at(f)], f.var[at(f)]);
    }
    // y ticks at 1-2-5 steps (about 5 of them); the axis ends on a tick
    const step = niceStep((hi || 0.01) / 5);
    const nTicks = Math.min(Math.ceil((hi || 0.01) / step - 1e-9), 20);
    const top = nTicks * step;
    const dec = Math.max(0, -Math.floor(Math.log10(100 * step) + 1e-9));
    const e = (i) => L + (W - L - R) * i / (n + 1);  // slot i spans e(i) to e(i + 1)
    const y = (v) => H - B - (H - T - B) * Math.min(Math.max(v, 0), top) / top;
    g.lineWidth = 1; g.strokeStyle = "#e3e6ea"; g.fillStyle = "#66717f";
    g.textAlign = "right"; g.textBaseline = "middle";
    const yticks = [];
    for (let t = 0; t <= nTicks; t++) {
      const v = t * step; yticks.push(+v.toPrecision(12));
      g.beginPath(); g.moveTo(L, y(v)); g.lineTo(W - R, y(v)); g.stroke();
      g.fillText((100 * v).toFixed(dec) + "%", L - 6, y(v));
    }
    g.textAlign = "left"; g.textBaseline = "alphabetic";
    g.fillText("loss, % of portfolio value", 4, 14);
    // x ticks: the as-of dates of beats whose number is a multiple of a 1-2-5 step, so
    // that the labels do not overlap and stay on the same beats as the chart moves on
    const room = Math.max(1, Math.floor((W - L - R) / (g.measureText("2000-00-00").width + 24)));
    const every = Math.max(1, niceStep((n + 1) / room));
    const xticks = [];
    g.textAlign = "center"; g.textBaseline = "top"; g.strokeStyle = "#9aa3ae";
    pts.forEach((p, i) => {
      if (p.seq % every !== 0) return;
      const px = e(i + 0.5), half = g.measureText(p.date).width / 2;
      g.beginPath(); g.moveTo(px, H - B); g.lineTo(px, H - B + 4); g.stroke();
      g.fillText(p.date, Math.min(Math.max(px, L - 8 + half), W - half - 2), H - B + 7);
      xticks.push(p.date);
    });
    g.beginPath(); g.moveTo(L, H - B); g.lineTo(W - R, H - B); g.stroke();
    g.textAlign = "left";
    c.dataset.xticks = JSON.stringify(xticks); c.dataset.yticks = JSON.stringify(yticks);
    c.dataset.slots = JSON.stringify([e(0), e(n + 1), n + 1]);
    geo = { L, R, W, pts, prev, k, a, at };
    // runs of consecutive slots with a forecast of consecutive beats: each is drawn as one
    // stepped path
    const runs = [];
    fc.forEach((f, s) => {
      if (!f) return;
      const run = runs[runs.length - 1];
      if (run && run[run.length - 1] === s - 1 && fc[s - 1].seq === f.seq - 1) run.push(s);
      else runs.push([s]);
    });
    g.fillStyle = "rgba(47,111,219,0.18)";
    for (const run of runs) {
      g.beginPath();
      for (const s of run) {
        const v = y(fc[s].var_interval[at(fc[s])][1]);
        g.lineTo(e(s), v); g.lineTo(e(s + 1), v);
      }
      for (const s of run.slice().reverse()) {
        const v = y(fc[s].var_interval[at(fc[s])][0]);
        g.lineTo(e(s + 1), v); g.lineTo(e(s), v);
      }
      g.fill();
    }
    const line = (f, color, dash) => {
      g.strokeStyle = color; g.setLineDash(dash); g.lineWidth = 1.5; g.beginPath();
      for (const run of runs) {
        run.forEach((s, r) => {
          const v = y(f(fc[s], at(fc[s])));
          (r ? g.lineTo : g.moveTo).call(g, e(s), v); g.lineTo(e(s + 1), v);
        });
      }
      g.stroke(); g.setLineDash([]);
    };
    line((p, j) => p.var[j], "#2f6fdb", []);
    line((p, j) => p.es[j], "#9b51e0", [5, 4]);
    // breaches are per the portfolio's levels (a beat with no consensus has them too)
    pts.forEach((p, i) => {
      if (p.realized === null) return;
      const breach = p.breaches.length > k && p.breaches[k];
      g.fillStyle = breach ? "#e0393e" : "#555";
      g.beginPath(); g.arc(e(i + 0.5), y(-p.realized), breach ? 4 : 2, 0, 7); g.fill();
    });
    const total = points[points.length - 1].seq + 1;  // beats are numbered from 0
    if (total > n) {
      g.fillStyle = "#66717f"; g.textAlign = "right";
      g.fillText(`latest ${n} of ${total} beats`, W - R, 14);
      g.textAlign = "left";
    }
    c.dataset.note = total > n ? `latest ${n} of ${total} beats` : "";
    if (hover === null) $("tip").hidden = true; else readout(hover);
  }

  // the hover readout: the beat under the pointer, its date and realized loss, and the
  // forecast in force for it (the previous beat's, if it had the level)
  function readout(clientX) {
    const tip = $("tip");
    if (!geo) { tip.hidden = true; return; }
    const { L, R, W, pts, prev, k, a, at } = geo, n = pts.length;
    const rect = $("chart").getBoundingClientRect();
    // the canvas may be drawn for another width than it is shown at (until it is redrawn)
    const mx = (clientX - rect.left) * (rect.width ? W / rect.width : 1);
    const i = Math.floor((mx - L) / (W - L - R) * (n + 1));
    if (i < 0 || i > n) { tip.hidden = true; return; }
    const rows = [];
    if (i < n) {
      const p = pts[i];
      rows.push(`<b>${esc(p.date)}</b> (beat ${p.seq})`);
      if (p.realized !== null) {
        rows.push((p.realized < 0 ? "loss " + pct(-p.realized) : "gain " + pct(p.realized)) +
          (p.breaches.length > k && p.breaches[k] ? " <span class='bad'>breach</span>" : ""));
      }
      if (!p.alphas.length) rows.push('<span class="muted">no consensus at this beat</span>');
    } else {
      rows.push(`<b>next day</b> after ${esc(pts[n - 1].date)}`);
    }
    const seq = i < n ? pts[i].seq : pts[n - 1].seq + 1;
    const b = i > 0 ? pts[i - 1] : prev;  // the beat before, if loaded
    const f = b && b.seq === seq - 1 ? b : null, j = f ? at(f) : -1;
    if (j >= 0) {
      rows.push(`VaR ${lvl(a)} ${pct(f.var[j])} [${pct(f.var_interval[j][0])}, ` +
        `${pct(f.var_interval[j][1])}]`, `ES ${lvl(a)} ${pct(f.es[j])}`,
        `<span class="muted">forecast of beat ${f.seq}</span>`);
    } else if (seq > 0) {
      const why = !f ? "is not loaded" : !f.alphas.length ? "had no consensus"
        : "had other levels";
      rows.push(`<span class="muted">no ${a === undefined ? "VaR" : "VaR " + lvl(a)} in force ` +
        `(beat ${seq - 1} ${why})</span>`);
    }
    tip.innerHTML = rows.join("<br>"); tip.hidden = false;
    tip.style.left = Math.max(0, Math.min(mx + 14, W - tip.offsetWidth - 4)) + "px";
  }

  // The weights, decisions and ledger head: 3 requests. A burst of beats (a catch-up after a
  // reconnect replays hundreds) must not send 3 per beat: one refresh is in flight at a
  // time, and the beats that arrive meanwhile ask for one more after it. A reply that comes
  // after the view changed (another portfolio, another level: `changed`) is dropped, and the
  // load asking for it aborted; a load with no answer within detailMs() (15 s) is given up
  // (its error shown until a load succeeds) and the beats that came meanwhile ask again. A
  // load that failed with an error worth trying again (no answer from the server, a 5xx
  // such as a 503 from storage) asks again by itself after Retry-After or a backoff; one
  // such try again is pending at a time, however many beats' loads failed meanwhile.
  let busy = false, dirty = false, gen = 0, loading = null, detailRetries = 0;
  let detailRetryPending = false;
  function refreshDetails(changed) {
    dirty = true;
    if (changed) { gen++; if (loading) loading.abort(); }
    if (busy) return;
    busy = true;
    (async () => {
      try {
        while (dirty) { dirty = false; await loadDetails(gen); }
      } finally { busy = false; }
    })();
  }

  async function loadDetails(my) {
    const ctl = new AbortController(), opts = { signal: ctl.signal };
    let late = false;
    const ms = detailMs(), timer = setTimeout(() => { late = true; ctl.abort(); }, ms);
    loading = ctl;
    try {
      const name = encodeURIComponent(portfolio);
      const v = await api(`/v1/portfolios/${name}/var`, opts);
      if (my !== gen) return;
      if (!v.levels.length) noVar(v.seq, v.detail, true);
      const l = v.levels.find((x) => x.alpha === alphas[level]) || v.levels[0];
      $("weights-level").textContent = l ? `(VaR ${lvl(l.alpha)})` : "";
      $("weights").innerHTML = l ? Object.entries(l.weights).sort((a, b) => b[1] - a[1])
        .map(([a, w]) => `<tr><td>${esc(a)}</td><td class="num">${w.toFixed(3)}</td></tr>`)
        .join("") : "";
      $("availability").textContent = l ? `availability ${l.available}/${l.total}` +
        (l.degraded ? " (degraded)" : "") + ` - ${l.method}` : "no consensus";
      const all = await api(`/v1/portfolios/${name}/decisions?limit=500`, opts);
      if (my !== gen) return;
      const other = all.filter((x) => x.action !== "noop");  // noop: nothing to show
      const d = other.slice(-8).reverse();
      const upTo = all.length ? ` (to beat ${all[all.length - 1].seq})` : "";
      $("decisions-note").textContent = !all.length ? "no decisions yet" : !d.length
        ? `all the arbiter's last ${all.length} decisions${upTo} are no-op (nothing to do)`
        : `the latest ${d.length} of the ${other.length} decisions other than no-op among ` +
          `the arbiter's last ${all.length}${upTo}; ${all.length - other.length} no-op ` +
          "not listed";
      $("decisions").innerHTML = d.length
        ? "<tr><th>beat</th><th>action</th><th>agents</th><th>reason</th></tr>" +
          d.map((x) => `<tr><td class="seq">${x.seq}</td><td class="act">${esc(x.action)}</td>` +
            `<td>${esc(x.agents.join(", "))}</td><td class="reason">${esc(x.reason)}</td></tr>`)
            .join("") : "";
      const h = await api("/v1/ledger/head", opts);
      if (my !== gen) return;
      $("head").innerHTML = `<dt>size</dt><dd id="head-size">${h.size}</dd>` +
        `<dt>root</dt><dd>${esc(h.root)}</dd><dt>signed</dt><dd>${esc(h.timestamp)}</dd>`;
      detailRetries = 0;
      if (detailsError) { detailsError = ""; paint(); }
    } catch (e) {
      if (my !== gen) return;
      detailsError = late ? `no answer within ${ms / 1000} s` : failure(e);
      paint();
      if (!late && transient(e) && !detailRetryPending) {
        detailRetryPending = true;
        // not tied to `gen`: a level picked meanwhile (its own load failing, no retry of
        // its own as this one is pending) is read again too; connect() drops this timer
        later(() => { detailRetryPending = false; refreshDetails(); },
              backoff(e, detailRetries++));
      }
    } finally { clearTimeout(timer); if (loading === ctl) loading = null; }
  }

  // the chart is redrawn once per frame however many beats arrive in it
  let drawing = false;
  function redraw() {
    if (drawing) return;
    drawing = true; requestAnimationFrame(() => { drawing = false; draw(); });
  }

  function onBeat(ev) {
    if (ev.target !== source) return;  // not the current stream (a closed one sends none)
    streamHeard = Date.now();
    const p = JSON.parse(ev.data);
    // a beat shows the stream delivers: live at once (else after liveMs() open)
    if (link.state !== "live") { retries = 0; setLink("live"); }
    if (points.length && points[points.length - 1].seq >= p.seq) return;
    heard = { seq: p.seq, at: new Date() };
    points.push(p);
    if (points.length > 5000) points.shift();
    renderLevels(p); redraw(); refreshDetails();
  }

  // the portfolio's view starts empty: nothing of the previous portfolio stays shown (its
  // levels, cards, title, details); the chosen level's alpha is kept
  function clearView() {
    points = []; alphas = []; level = 0; latest = null; horizon = null;
    $("levels").innerHTML = ""; delete $("levels").dataset.built;
    $("level-pick").innerHTML = ""; $("asof").textContent = "";
    for (const id of ["weights-level", "weights", "availability", "decisions-note", "decisions"]) {
      $(id).textContent = "";
    }
    showLevel(); draw();
  }

  // Each connection has a number: a connection that a later one overtook (the portfolio
  // changed while it waited for an answer) stops at its next step and opens no stream, and
  // its timers (the stream's live check, a try again) do nothing.
  let conn = 0, retries = 0, timers = [];
  function later(f, ms) {
    const t = setTimeout(() => { timers = timers.filter((x) => x !== t); f(); }, ms);
    timers.push(t);
  }
  async function connect() {
    const my = ++conn;
    if (source) { source.close(); source = null; }
    timers.forEach(clearTimeout); timers = []; detailRetryPending = false;
    clearView();
    // the details asked for before are not shown, and no beat of the old portfolio asks
    // again (connect() asks once its own data is in)
    gen++; dirty = false; detailsError = ""; heard = null; detailRetries = 0;
    if (loading) loading.abort();
    setLink("connecting");
    sessionStorage.setItem("swarmvar-key", key);
    try {
      const list = await api("/v1/portfolios");
      if (my !== conn) return;
      $("portfolio").innerHTML = list.map((p) => `<option>${esc(p.name)}</option>`).join("");
      if (!portfolio && list.length) portfolio = list[0].name;
      $("portfolio").value = portfolio;
      if (!portfolio) throw new Error("this server runs no portfolio yet");
      const name = encodeURIComponent(portfolio);
      const history = await api(`/v1/portfolios/${name}/history?limit=1000`);
      if (my !== conn) return;
      const v = await api(`/v1/portfolios/${name}/var`);
      if (my !== conn) return;
      points = history; horizon = v.horizon;
      const last = points.length ? points[points.length - 1] : null;
      if (last) heard = { seq: last.seq, at: new Date() };
      // the cards show the latest beat with a consensus; the line above the chart the last
      let shown = null;
      for (let i = points.length - 1; i >= 0 && !shown; i--) {
        if (points[i].alphas.length) shown = points[i];
      }
      if (shown) renderLevels(shown); else if (v.levels.length) renderLevels({ seq: v.seq,
        date: v.as_of, alphas: v.levels.map((l) => l.alpha), var: v.levels.map((l) => l.var),
        es: v.levels.map((l) => l.es), var_interval: v.levels.map((l) => l.var_interval) });
      if (last && last !== shown) renderLevels(last);
      if (!v.levels.length) noVar(v.seq, v.detail, true);  // no consensus yet: say why
      draw(); refreshDetails(true);
      retries = 0; openStream(my);
    } catch (e) {
      if (my !== conn) return;
      const again = transient(e), wait = again ? backoff(e, retries++) : 0;
      setLink("failed", { why: failure(e),
        retryAt: again ? new Date(Date.now() + wait) : null });
      if (again) later(() => { if (my === conn) connect(); }, wait);
    }
  }

  // The event stream from the last beat the page has. Live once it has stayed open liveMs()
  // or brought a beat (a stream that opens and drops at once never says live); a drop says
  // since when and which beat came last while the browser reconnects by itself. A stream
  // the server answered with an error (503 past --max-streams, 401, 404) the browser does
  // not reconnect: the page asks the server why, says it, and opens a new one after
  // Retry-After or a backoff, unless the error needs the user (a 4xx other than 429). A
  // connection can die with no sign (a network gone half-open: the browser waits on it for
  // ever); the server sends a `ping` event every pingMs(), so a stream from which nothing
  // (no beat, no ping, no open) came for 3 pings is called not live, closed and opened anew.
  let streamHeard = 0;  // when the current stream last opened or sent something (ms)
  function openStream(my) {
    const name = encodeURIComponent(portfolio);
    const since = points.length ? points[points.length - 1].seq : 0;
    const url = `/v1/portfolios/${name}/events?since=${since}&key=${encodeURIComponent(key)}`;
    const s = new EventSource(url);
    source = s; streamHeard = Date.now();
    if (link.state === "connecting") setLink("opening");
    s.addEventListener("beat", onBeat);
    s.addEventListener("ping", () => { if (s === source) streamHeard = Date.now(); });
    // the browser reconnects with the same EventSource: each open and error starts an epoch,
    // and the live check counts only if no other began since the open it follows
    let epoch = 0;
    s.onopen = () => {
      if (s !== source) return;
      const mine = ++epoch;
      streamHeard = Date.now();
      later(() => {
        if (s === source && epoch === mine && link.state !== "live") {
          retries = 0; setLink("live");
        }
      }, liveMs());
    };
    s.onerror = () => {
      if (s !== source) return;
      epoch++;
      if (s.readyState === EventSource.CLOSED) { whyRefused(my, s, url); return; }
      if (link.state !== "down") setLink("down", { since: new Date() });
    };
    // checked when the quiet time since the stream was last heard ends (a few ms after, so
    // that the check is not a moment early), not on a rhythm of its own: silence is told
    // within 3 pings and a few ms of the last thing heard
    const quiet = 3 * pingMs();
    const watch = () => later(() => {
      if (my !== conn || s !== source || s.readyState === EventSource.CLOSED) return;
      if (Date.now() - streamHeard < quiet) { watch(); return; }
      s.close(); source = null;  // a drop already said stays as it was said
      if (link.state !== "down") setLink("down", { since: new Date(), silent: quiet });
      openStream(my);
    }, Math.max(0, streamHeard + quiet - Date.now()) + 10);
    if (quiet > 0) watch();
  }

  // Why the server did not take the stream: asked again with fetch (the answer's status and
  // error, or no answer). A stream accepted this time is said so and opened again at once
  // (after a backoff if that happened before it was live again, so that it cannot loop).
  async function whyRefused(my, s, url) {
    const ctl = new AbortController(), timer = setTimeout(() => ctl.abort(), 10000);
    let why = "", again = true, wait;
    try {
      const r = await fetch(url, { signal: ctl.signal });
      if (r.ok) {  // an answer the browser would not take as a stream (or taken now)
        const type = r.headers.get("Content-Type") || "no Content-Type";
        ctl.abort();
        if (type.startsWith("text/event-stream")) {
          why = "then accepted when asked again";
          wait = retries++ ? backoff(null, retries - 2) : 0;
        } else {
          why = `${r.status} ${type}, not an event stream`;
          wait = backoff(null, retries++);
        }
      } else {
        const e = answerError(r, await r.json().catch(() => null));
        why = e.message; again = transient(e); wait = backoff(e, retries++);
      }
    } catch (e) {
      why = e.name === "AbortError" ? "no answer within 10 s" : "cannot reach the server";
      wait = backoff(null, retries++);
    } finally { clearTimeout(timer); }
    if (my !== conn || s !== source) return;
    setLink("refused", { why, retryAt: again ? new Date(Date.now() + wait) : null });
    if (again) later(() => { if (my === conn && s === source) openStream(my); }, wait);
  }

  $("login").addEventListener("submit", (e) => {
    e.preventDefault(); key = $("key").value || key;
    portfolio = $("portfolio").value || portfolio; connect();
  });
  $("portfolio").addEventListener("change", () => { portfolio = $("portfolio").value; connect(); });
  $("level-pick").addEventListener("click", (e) => {
    const b = e.target.closest("button"); if (b) pick(+b.dataset.k);
  });
  $("levels").addEventListener("click", (e) => {
    const c = e.target.closest(".card"); if (c) pick(+c.dataset.k);
  });
  $("levels").addEventListener("keydown", (e) => {
    const c = e.target.closest(".card[role='button']");
    if (c && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); pick(+c.dataset.k); }
  });
  $("chart").addEventListener("mousemove", (e) => { hover = e.clientX; readout(hover); });
  $("chart").addEventListener("mouseleave", () => { hover = null; $("tip").hidden = true; });
  // the chart follows its box, whatever resized it: the window, or the page growing a
  // scrollbar as the panels below fill
  new ResizeObserver(redraw).observe(document.querySelector(".chart-box"));
  // and the screen's pixel density (the page moved to another screen, or zoomed): the query
  // matches the density it was made for, so a change is heard once and a new query made
  function onDensity() {
    redraw();
    matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`)
      .addEventListener("change", onDensity, { once: true });
  }
  onDensity();
  $("verify").addEventListener("click", async () => {
    $("verified").textContent = "verifying...";
    try {
      const v = await api("/v1/ledger/verify", { method: "POST", headers: { "X-API-Key": key } });
      $("verified").innerHTML = v.ok ? `<span class="ok">verified ${v.size} entries</span>`
        : `<span class="bad">broken at entry ${v.first_bad}: ${esc(v.reason)}</span>`;
    } catch (e) { $("verified").innerHTML = `<span class="bad">${esc(e)}</span>`; }
  });
  $("key").value = key;
  draw(); paint();
  if (key) connect();
})();
