/**
 * The dashboard, served by the status server at `/`: one self-contained page (no external asset, no CDN, works
 * offline), built for a laptop at 3 a.m.: dark, big numbers, what moved last. It reads /api/events (server-sent
 * events over fetch, so a token can be sent from outside loopback) and steers through /api/control/<action> with
 * the token the operator pastes (kept in this tab's sessionStorage only). Every text is set with textContent.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>cutover</title>
<style>
  :root { --bg:#0f1115; --panel:#171a21; --line:#262b36; --fg:#e6e9ef; --dim:#8b93a5; --ok:#3fb950; --warn:#d29922; --bad:#f85149; --acc:#58a6ff; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--fg); font:15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { display:flex; flex-wrap:wrap; gap:.5em 1.5em; align-items:baseline; padding:14px 20px; border-bottom:1px solid var(--line); }
  header h1 { font-size:20px; margin:0; }
  .dim { color:var(--dim); }
  .pill { padding:2px 10px; border-radius:99px; background:var(--line); font-weight:600; }
  .pill.ok { background:#1f3d27; color:var(--ok); } .pill.warn { background:#3d3217; color:var(--warn); } .pill.bad { background:#442024; color:var(--bad); }
  main { display:grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap:14px; padding:14px 20px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; min-width:0; }
  section h2 { font-size:13px; text-transform:uppercase; letter-spacing:.08em; color:var(--dim); margin:0 0 10px; }
  .big { display:grid; grid-template-columns: repeat(3, 1fr); gap:10px; }
  .big div b { display:block; font-size:30px; font-variant-numeric: tabular-nums; }
  .big div span { color:var(--dim); font-size:12px; }
  .bar { height:10px; background:var(--line); border-radius:5px; overflow:hidden; }
  .bar i { display:block; height:100%; background:var(--acc); }
  .bar.done i { background:var(--ok); }
  table { width:100%; border-collapse:collapse; font-size:13px; }
  td, th { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { color:var(--dim); font-weight:500; }
  td.num { text-align:right; font-variant-numeric: tabular-nums; }
  .scroll { max-height:260px; overflow:auto; }
  svg { width:100%; height:120px; display:block; }
  button { background:var(--line); color:var(--fg); border:1px solid #39404f; border-radius:6px; padding:7px 14px; font-size:15px; cursor:pointer; }
  button:hover { border-color:var(--acc); }
  button.bad { border-color:var(--bad); color:var(--bad); }
  input { background:#0b0d11; color:var(--fg); border:1px solid var(--line); border-radius:6px; padding:7px; font-size:15px; width:7em; }
  input#token { width:100%; }
  .row { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin:6px 0; }
  #answer { min-height:1.4em; }
  .err { color:var(--bad); } .okc { color:var(--ok); }
  .wide { grid-column: 1 / -1; }
</style>
</head>
<body>
<header>
  <h1 id="migration">cutover</h1>
  <span class="pill" id="phase">connecting</span>
  <span id="step" class="dim"></span>
  <span id="route" class="dim"></span>
  <span id="health"></span>
  <span id="conn" class="pill warn">connecting</span>
</header>
<main>
  <section>
    <h2>Copy</h2>
    <div class="big">
      <div><b id="pct">-</b><span>done</span></div>
      <div><b id="dps">-</b><span>docs/s</span></div>
      <div><b id="eta">-</b><span>ETA</span></div>
      <div><b id="processed">-</b><span>documents handled</span></div>
      <div><b id="total">-</b><span>source documents</span></div>
      <div><b id="mbs">-</b><span>MB/s</span></div>
    </div>
    <div class="bar" style="margin-top:10px"><i id="pctbar" style="width:0"></i></div>
    <div class="big" style="margin-top:10px">
      <div><b id="lag">-</b><span>catch-up lag</span></div>
      <div><b id="dead">-</b><span>dead letters</span></div>
      <div><b id="retries">-</b><span>retries</span></div>
      <div id="nfbox" style="display:none"><b id="nf">-</b><span id="nflabel">copied back to</span></div>
    </div>
  </section>
  <section>
    <h2>Throttle and control</h2>
    <div class="row"><span class="pill" id="tstate">-</span> <span id="trate"></span></div>
    <div id="treason" class="dim"></div>
    <div class="row">
      <button id="btn-pause">Pause</button><button id="btn-resume">Resume</button>
      <input id="rate" placeholder="docs/s"><button id="btn-rate">Set rate</button>
      <input id="batch" placeholder="batch"><button id="btn-batch">Set batch</button>
    </div>
    <div class="row">
      <button id="btn-postpone">Postpone switch</button><button id="btn-unpostpone">Allow switch</button>
      <span id="postponed" class="dim"></span>
      <button id="btn-panic" class="bad">Panic: stop now</button>
    </div>
    <div class="row"><input id="token" type="password" autocomplete="off" placeholder="control token (cat <stateDir>/<migration>/status/control.token)"></div>
    <div id="answer"></div>
  </section>
  <section>
    <h2>Throughput (docs/s)</h2>
    <svg id="chart-dps" viewBox="0 0 400 120" preserveAspectRatio="none"></svg>
    <h2 style="margin-top:8px">Catch-up lag (s)</h2>
    <svg id="chart-lag" viewBox="0 0 400 120" preserveAspectRatio="none"></svg>
  </section>
  <section>
    <h2>Slices</h2>
    <div class="scroll"><table><thead><tr><th>slice</th><th style="width:50%"></th><th class="num">handled</th></tr></thead><tbody id="slices"></tbody></table></div>
  </section>
  <section>
    <h2>Throttle decisions</h2>
    <div class="scroll"><table><tbody id="decisions"></tbody></table></div>
  </section>
  <section>
    <h2>Write freezes and holds</h2>
    <div class="scroll"><table><thead><tr><th>#</th><th>kind</th><th class="num">ms</th><th>outcome</th></tr></thead><tbody id="pauses"></tbody></table></div>
    <h2 style="margin-top:10px">Warnings</h2>
    <div id="lasterror" class="err"></div>
    <div class="scroll"><table><tbody id="warnings"></tbody></table></div>
  </section>
  <section class="wide">
    <h2>Audit trail</h2>
    <div class="scroll"><table><thead><tr><th>at</th><th>event</th><th>details</th></tr></thead><tbody id="audit"></tbody></table></div>
  </section>
</main>
<script>
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => (n === undefined || n === null ? '-' : Math.round(n).toLocaleString('en-US'));
  const dur = (s) => {
    if (s === null || s === undefined) return '-';
    s = Math.round(s);
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  };
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');
  const set = (id, text) => { const e = $(id); if (e.textContent !== String(text)) e.textContent = String(text); };
  const tok = $('token');
  tok.value = sessionStorage.getItem('cutover-token') || '';
  tok.addEventListener('change', () => sessionStorage.setItem('cutover-token', tok.value.trim()));
  const auth = () => (tok.value.trim() ? { authorization: 'Bearer ' + tok.value.trim() } : {});

  function rows(tbody, items, cells) {
    const body = $(tbody);
    body.replaceChildren(...items.map((it) => {
      const tr = document.createElement('tr');
      for (const c of cells(it)) {
        const td = document.createElement('td');
        if (typeof c === 'object' && c !== null && c.node) td.append(c.node); else td.textContent = String(c ?? '');
        if (typeof c === 'number') td.className = 'num';
        tr.append(td);
      }
      return tr;
    }));
  }

  function chart(id, points, color) {
    const svg = $(id);
    const ns = 'http://www.w3.org/2000/svg';
    const vals = points.map((p) => p.v).filter((v) => typeof v === 'number');
    svg.replaceChildren();
    if (points.length < 2 || vals.length === 0) return;
    const max = Math.max(1, ...vals);
    const t0 = points[0].t, t1 = points[points.length - 1].t || t0 + 1;
    const xy = points.filter((p) => typeof p.v === 'number')
      .map((p) => ((p.t - t0) / Math.max(1, t1 - t0)) * 400 + ',' + (115 - (p.v / max) * 105)).join(' ');
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', xy);
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', color);
    line.setAttribute('stroke-width', '2');
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', '4'); label.setAttribute('y', '12'); label.setAttribute('fill', '#8b93a5'); label.setAttribute('font-size', '11');
    label.textContent = 'max ' + Math.round(max * 10) / 10;
    svg.append(line, label);
  }

  function render(s) {
    set('migration', s.migration);
    set('phase', s.phase);
    $('phase').className = 'pill ' + (s.phase === 'failed' ? 'bad' : s.phase === 'cut-over' ? 'ok' : 'warn');
    set('step', s.step ? 'step: ' + s.step.title : '');
    set('route', (s.sourceIndex || '?') + ' (' + s.source + ') → ' + s.targetIndex + ' (' + s.target + ') · ' + s.command + ' pid ' + s.pid);
    const w = s.watchdog;
    $('health').replaceChildren(...(w && w.running ? w.clusters : []).map((r) => {
      const p = document.createElement('span');
      p.className = 'pill ' + (r.status === 'green' ? 'ok' : r.status === 'yellow' ? 'warn' : 'bad');
      p.textContent = r.side + ' ' + r.status + (r.unassignedShards ? ' (' + r.unassignedShards + ' unassigned)' : '');
      p.style.marginRight = '6px';
      return p;
    }));
    const c = s.copy;
    const processed = c ? c.slices.reduce((a, x) => a + x.processed, 0) : 0;
    const pct = c && c.sourceDocs > 0 ? Math.min(100, (processed / c.sourceDocs) * 100) : c && c.slices.every((x) => x.done) ? 100 : 0;
    set('pct', c ? pct.toFixed(1) + '%' : '-');
    $('pctbar').style.width = pct + '%';
    set('processed', c ? fmt(processed) : '-');
    set('total', c ? fmt(c.sourceDocs) : '-');
    set('dps', fmt(s.docsPerSecond));
    set('mbs', (s.bytesPerSecond / 1048576).toFixed(1));
    set('eta', s.throttle && s.throttle.paused ? 'paused' : dur(s.etaSeconds));
    set('lag', s.catchUp && s.catchUp.lastLagMs !== undefined ? (s.catchUp.lastLagMs / 1000).toFixed(1) + 's' : '-');
    set('dead', c ? fmt(c.deadLetters) : '-');
    $('nfbox').style.display = c && c.newestFirst ? '' : 'none';
    if (c && c.newestFirst) {
      const nf = c.newestFirst;
      set('nf', nf.reachedBack === null ? 'not yet' : nf.reachedBack === 'all' ? 'all' : nf.reachedBack.slice(0, 16).replace('T', ' '));
      set('nflabel', 'copied back to (' + nf.field + ', newest first)');
    }
    $('dead').className = c && c.deadLetters > 0 ? 'err' : '';
    set('retries', c ? fmt(c.retries) : '-');
    const t = s.throttle;
    if (t) {
      set('tstate', t.paused ? 'PAUSED' : 'running');
      $('tstate').className = 'pill ' + (t.paused ? 'bad' : 'ok');
      set('trate', (t.rate ? t.rate + ' docs/s' : 'unlimited') + (t.ceiling ? ' (ceiling ' + t.ceiling + ')' : '') + (t.batchDocs ? ' · batch ' + t.batchDocs : '') + (t.maxConcurrency ? ' · ' + t.concurrency + ' of ' + t.maxConcurrency + ' bulks at once' : '') + (t.captureCap ? ' (the capture allows ' + t.captureCap.concurrency + ')' : ''));
      set('treason', t.paused ? t.pausedBy.map((p) => p.by + ': ' + p.why).join('; ') : t.reason);
    } else {
      set('tstate', 'no copy in this process');
      set('trate', ''); set('treason', '');
    }
    set('postponed', s.postpone ? (s.postpone.postponed ? 'switch POSTPONED' : 'switch allowed') : 'no postpone flag configured');
    const per = c && c.slices.length ? c.sourceDocs / c.slices.length : 0;
    rows('slices', c ? c.slices : [], (x) => {
      const bar = document.createElement('div');
      bar.className = 'bar' + (x.done ? ' done' : '');
      const i = document.createElement('i');
      i.style.width = (x.done ? 100 : per > 0 ? Math.min(99, (x.processed / per) * 100) : 0) + '%';
      bar.append(i);
      return [x.slice, { node: bar }, x.processed];
    });
    rows('decisions', s.decisions.slice().reverse(), (d) => [time(d.at), d.change]);
    rows('pauses', s.pausesOfWrites, (p) => [p.attempt, p.kind, p.durationMs, p.switched ? 'switched' : 'lifted: ' + (p.reason || '')]);
    rows('warnings', s.warnings.slice().reverse(), (w) => [time(w.at), w.message]);
    set('lasterror', s.lastError ? 'last error in ' + s.lastError.step + ': ' + s.lastError.message : '');
    rows('audit', s.auditTail.slice().reverse(), (a) => {
      const { at, event, pid, ...rest } = a;
      return [time(at), event, JSON.stringify(rest)];
    });
    chart('chart-dps', s.history.map((h) => ({ t: h.t, v: h.docsPerSecond })), '#58a6ff');
    chart('chart-lag', s.history.map((h) => ({ t: h.t, v: h.lagSeconds })), '#d29922');
  }

  function conn(ok, text) {
    set('conn', text);
    $('conn').className = 'pill ' + (ok ? 'ok' : 'bad');
  }

  async function stream() {
    for (;;) {
      try {
        const r = await fetch('/api/events', { headers: auth(), cache: 'no-store' });
        if (r.status === 401) { conn(false, 'token needed'); await new Promise((f) => setTimeout(f, 3000)); continue; }
        if (!r.ok || !r.body) throw new Error('status ' + r.status);
        conn(true, 'live');
        const rd = r.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await rd.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\\n\\n')) >= 0) {
            const chunk = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = chunk.split('\\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\\n');
            if (data) render(JSON.parse(data));
          }
        }
      } catch (e) { /* the command ended or restarted: shown below, retried */ }
      conn(false, 'disconnected: the command ended or restarted');
      await new Promise((f) => setTimeout(f, 2000));
    }
  }

  async function control(action, value) {
    const a = $('answer');
    try {
      const r = await fetch('/api/control/' + action, {
        method: 'POST',
        headers: Object.assign({ 'content-type': 'application/json' }, auth()),
        body: JSON.stringify(value === undefined ? {} : { value }),
      });
      const b = await r.json();
      a.className = r.ok ? 'okc' : 'err';
      a.textContent = r.ok ? b.message : r.status + ': ' + b.error;
    } catch (e) {
      a.className = 'err';
      a.textContent = action + ': no answer (' + e.message + ')';
    }
  }
  $('btn-pause').onclick = () => control('pause');
  $('btn-resume').onclick = () => control('resume');
  $('btn-rate').onclick = () => control('rate', $('rate').value.trim());
  $('btn-batch').onclick = () => control('batch', $('batch').value.trim());
  $('btn-postpone').onclick = () => control('postpone');
  $('btn-unpostpone').onclick = () => control('unpostpone');
  $('btn-panic').onclick = () => { if (confirm('Stop the migration now? Checkpoints are kept; cutover run resumes.')) control('panic'); };
  stream();
})();
</script>
</body>
</html>
`;
