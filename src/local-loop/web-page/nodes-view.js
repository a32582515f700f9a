// Nodes: every node connected to the loop (trainers, annotators, converters over socket.io) and every detector that
// reports its status (REST), with what they report.
import { esc } from './api.js'

const ago = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '–')
const reported = (value) => (value === undefined || value === null || value === '' ? '<span class="muted">not reported</span>' : esc(value))

export async function renderNodes({ main, onLive }) {
  main.innerHTML = `
    <section class="card"><h2>Connected nodes</h2>
      <table><thead><tr><th>Name</th><th>Kind</th><th>Status</th><th>Model version</th><th>Operation mode</th><th>Outbox</th><th class="hide-narrow">Last report</th></tr></thead>
      <tbody id="nodes"></tbody></table></section>
    <section class="card"><h2>Detectors</h2>
      <table><thead><tr><th>Name</th><th>Status</th><th>Model version</th><th>Target</th><th>Operation mode</th><th>Outbox</th><th class="hide-narrow">Last report</th></tr></thead>
      <tbody id="detectors"></tbody></table></section>`
  onLive((live) => {
    main.querySelector('#nodes').innerHTML = live.nodes.map((n) => {
      const s = n.status ?? {}
      return `<tr><td>${esc(n.name ?? n.sid)}</td><td>${esc(n.node_type)}</td><td>${reported(s.state)}${typeof s.progress === 'number' ? ` ${Math.round(s.progress * 100)}%` : ''}</td>
        <td>${reported(s.current_model ?? s.model_version)}</td><td>${reported(s.operation_mode)}</td>
        <td>${reported(s.outbox_depth ?? s.outbox?.depth)}</td><td class="hide-narrow">${ago(n.status_at ?? n.connected_at)}</td></tr>`
    }).join('') || '<tr><td colspan="7" class="muted">No node is connected.</td></tr>'
    main.querySelector('#detectors').innerHTML = live.detectors.map((d) => {
      const s = d.status ?? {}
      return `<tr data-uuid="${esc(d.uuid)}"><td>${esc(s.name ?? d.uuid)}</td><td>${reported(s.state)}</td><td class="current-model">${reported(s.current_model)}</td>
        <td>${reported(s.target_model)}</td><td>${reported(s.operation_mode)}</td>
        <td>${reported(s.outbox_depth ?? s.outbox?.depth)}</td><td class="hide-narrow">${ago(d.received_at)}</td></tr>`
    }).join('') || '<tr><td colspan="7" class="muted">No detector has reported.</td></tr>'
  })
}
