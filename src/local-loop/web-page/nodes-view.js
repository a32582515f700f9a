// Nodes: every node connected to the loop (trainers, annotators, converters over socket.io) and every detector that
// reports its status (REST), with what they report.
import { esc } from './api.js'

const ago = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '–')
/** A cell that names its column, so a narrow screen can show each row as a card of labelled lines (style.css). */
const cell = (label, html, className = '') => `<td data-label="${label}"${className ? ` class="${className}"` : ''}>${html}</td>`
const reported = (value) => (value === undefined || value === null || value === '' ? '<span class="muted">not reported</span>' : esc(value))

export async function renderNodes({ main, onLive }) {
  main.innerHTML = `
    <section class="card"><h2>Connected nodes</h2>
      <table class="stacked"><thead><tr><th>Name</th><th>Kind</th><th>Status</th><th>Model version</th><th>Operation mode</th><th>Outbox</th><th class="hide-narrow">Last report</th></tr></thead>
      <tbody id="nodes"></tbody></table></section>
    <section class="card"><h2>Detectors</h2>
      <table class="stacked"><thead><tr><th>Name</th><th>Status</th><th>Model version</th><th>Target</th><th>Operation mode</th><th>Outbox</th><th class="hide-narrow">Last report</th></tr></thead>
      <tbody id="detectors"></tbody></table></section>`
  onLive((live) => {
    main.querySelector('#nodes').innerHTML = live.nodes.map((n) => {
      const s = n.status ?? {}
      return `<tr>${cell('Name', esc(n.name ?? n.sid))}${cell('Kind', esc(n.node_type))}${cell('Status', `${reported(s.state)}${typeof s.progress === 'number' ? ` ${Math.round(s.progress * 100)}%` : ''}`)}
        ${cell('Model version', reported(s.current_model ?? s.model_version))}${cell('Operation mode', reported(s.operation_mode))}
        ${cell('Outbox', reported(s.outbox_depth ?? s.outbox?.depth))}${cell('Last report', ago(n.status_at ?? n.connected_at), 'hide-narrow')}</tr>`
    }).join('') || '<tr><td colspan="7" class="muted">No node is connected.</td></tr>'
    main.querySelector('#detectors').innerHTML = live.detectors.map((d) => {
      const s = d.status ?? {}
      return `<tr data-uuid="${esc(d.uuid)}">${cell('Name', esc(s.name ?? d.uuid))}${cell('Status', reported(s.state))}${cell('Model version', reported(s.current_model), 'current-model')}
        ${cell('Target', reported(s.target_model))}${cell('Operation mode', reported(s.operation_mode))}
        ${cell('Outbox', reported(s.outbox_depth ?? s.outbox?.depth))}${cell('Last report', ago(d.received_at), 'hide-narrow')}</tr>`
    }).join('') || '<tr><td colspan="7" class="muted">No detector has reported.</td></tr>'
  })
}
