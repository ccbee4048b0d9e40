// swarm-lsp dashboard: renders the snapshots the dashboard server pushes over /ws.
// Every value from the swarm goes into the page as text (textContent), never as HTML.
'use strict';

const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
const samples = [];
const HISTORY_MS = 5 * 60 * 1000;
const $ = (id) => document.getElementById(id);
let socket = null;

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text == null ? '' : String(text);
  if (className) td.className = className;
  return td;
}

function seconds(ms) {
  if (ms == null || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60000)}m${Math.round((ms % 60000) / 1000)}s`;
}

function fill(id, rows, render) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  for (const item of rows) render(body.insertRow(), item);
  const empty = $(`${id}-empty`);
  if (empty) empty.hidden = rows.length > 0;
}

function renderMachines(machines, localRoles) {
  fill('machines', machines, (row, m) => {
    row.dataset.machine = m.name;
    row.dataset.health = m.health;
    row.title = m.healthText;
    const dot = row.insertCell().appendChild(document.createElement('span'));
    dot.className = 'dot';
    cell(row, m.name);
    cell(row, m.host);
    cell(row, (m.roles || []).join(', '));
    cell(row, (m.modelSizes || []).join(', ') || '-');
    cell(row, `${m.running}/${m.capacity}`);
    cell(row, Number(m.load || 0).toFixed(2));
    cell(row, m.serviceMs ? seconds(m.serviceMs) : '-');
    cell(row, m.rttMs ? seconds(m.rttMs) : '-');
    cell(row, m.completed);
    cell(row, m.health === 'ok' ? 'ok' : m.healthText, 'health');
  });
  $('local-roles').textContent = localRoles && localRoles.length
    ? `The coordinator runs ${localRoles.join(', ')} itself when no worker for them is connected.` : '';
}

function renderTasks(active) {
  fill('tasks', active, (row, t) => {
    row.dataset.task = t.taskId;
    row.dataset.state = t.state;
    cell(row, t.taskId.slice(0, 12)).title = t.taskId;
    cell(row, t.type);
    cell(row, t.state, `state-${t.state}`);
    cell(row, t.worker + (t.fallback ? ` (${t.fallback})` : ''));
    const progress = row.insertCell();
    if (t.state === 'RUNNING' && t.percentage >= 0) {
      const bar = progress.appendChild(document.createElement('span'));
      bar.className = 'bar';
      bar.appendChild(document.createElement('span')).style.width = `${t.percentage}%`;
      progress.append(` ${t.percentage}%`);
    } else {
      progress.textContent = t.state === 'RUNNING' ? `running ${seconds(t.durationMs)}` : 'queued';
    }
    // 0: past its estimate (the estimate was short, or the task is stuck).
    const eta = t.etaMs > 0 ? `~${seconds(t.etaMs)}` : t.etaMs === 0 ? 'overdue' : 'unknown';
    cell(row, eta, 'eta');
    const button = row.insertCell().appendChild(document.createElement('button'));
    button.className = 'cancel';
    button.textContent = 'Cancel';
    button.addEventListener('click', () => {
      button.disabled = true;
      socket.send(JSON.stringify({ cancel: t.taskId }));
    });
  });
}

function renderRecent(recent, failures) {
  const task = (row, t) => {
    row.dataset.task = t.taskId;
    row.dataset.state = t.state;
    cell(row, t.taskId.slice(0, 12)).title = t.taskId;
    cell(row, t.type);
    cell(row, t.state, `state-${t.state}`);
    cell(row, t.worker + (t.fallback ? ` (${t.fallback})` : ''));
  };
  fill('recent', recent.filter((t) => t.state !== 'QUEUED' && t.state !== 'RUNNING'), (row, t) => {
    task(row, t);
    cell(row, seconds(t.durationMs));
    cell(row, t.errorMessage, 'reason');
  });
  fill('failures', failures, (row, t) => {
    task(row, t);
    cell(row, `${t.errorCode ? `${t.errorCode}: ` : ''}${t.errorMessage}`, 'reason');
  });
}

function renderRoutes(routes) {
  fill('routes', routes, (row, r) => {
    cell(row, r.taskType);
    cell(row, r.priority || 'any');
    cell(row, r.complexity || 'any');
    cell(row, r.role);
    cell(row, r.machine || 'any');
    cell(row, r.modelSize);
    cell(row, seconds(r.timeoutMs));
  });
}

function svg(name, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

// Throughput: tasks finished per second over a 5 s window; queue depth as sampled.
function renderPlot() {
  const plot = $('plot');
  plot.replaceChildren();
  const now = Date.now();
  const W = 600, H = 140, top = 12, bottom = H - 14;
  const points = samples.filter((s) => now - s.t <= HISTORY_MS);
  const rate = points.map((s, i) => {
    let j = i;
    while (j > 0 && s.t - points[j - 1].t <= 5000) j -= 1;
    const span = (s.t - points[j].t) / 1000;
    return span > 0 ? (s.done - points[j].done) / span : 0;
  });
  const max = Math.max(1, ...rate, ...points.map((s) => s.queue));
  const x = (t) => W - ((now - t) / HISTORY_MS) * W;
  const y = (v) => bottom - (v / max) * (bottom - top);
  for (const [series, values] of [['done', rate], ['queue', points.map((s) => s.queue)]]) {
    if (points.length < 2) continue;
    const path = points.map((s, i) => `${x(s.t).toFixed(1)},${y(values[i]).toFixed(1)}`).join(' ');
    plot.appendChild(svg('polyline', { class: series, points: path }));
  }
  plot.appendChild(svg('text', { x: 4, y: 10 })).textContent = `${max.toFixed(max < 10 ? 1 : 0)}`;
  plot.appendChild(svg('text', { x: 4, y: H - 3 })).textContent = '-5 min';
  plot.appendChild(svg('text', { x: W - 24, y: H - 3 })).textContent = 'now';
}

function render(s) {
  $('coordinator').textContent = s.coordinator ? `coordinator ${s.coordinator}, up ${seconds(s.uptimeMs)}` : '';
  const link = $('link');
  link.textContent = s.connected ? 'live' : `coordinator unreachable${s.error ? `: ${s.error}` : ''}`;
  link.className = `pill ${s.connected ? 'live' : 'down'}`;
  if (!s.connected && !s.machines) return;
  const counts = s.counts || {};
  $('totals').textContent = Object.keys(counts).sort().map((k) => `${k.toLowerCase()} ${counts[k]}`).join(' · ');
  renderMachines(s.machines || [], s.localRoles);
  renderTasks(s.active || []);
  renderRecent(s.recent || [], s.failures || []);
  renderRoutes(s.routes || []);
  const queues = Object.entries(s.queues || {}).map(([role, depth]) => `${role} ${depth}`);
  $('queues').textContent = `queue depth ${s.queueDepth || 0}${queues.length ? ` (${queues.join(', ')})` : ''}`;
  if (s.sample) samples.push(s.sample);
  while (samples.length && Date.now() - samples[0].t > HISTORY_MS) samples.shift();
  renderPlot();
}

function connect() {
  socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  socket.addEventListener('open', () => socket.send(JSON.stringify({ token })));
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(event.data);
    if (message.type === 'history') samples.splice(0, samples.length, ...message.samples);
    else if (message.type === 'status') render(message);
    else if (message.type === 'refused') $('link').textContent = `refused: ${message.error} (open the address swarm-lsp dashboard printed)`;
    else if (message.type === 'cancelled') $('notice').textContent = message.error ? `cancel failed: ${message.error}` : '';
  });
  socket.addEventListener('close', (event) => {
    const link = $('link');
    link.className = 'pill down';
    if (event.code === 1008) return; // refused: retrying would not help
    link.textContent = 'disconnected; retrying…';
    setTimeout(connect, 1000);
  });
}

connect();
