// Trainings: start one on a connected trainer, follow it live (state, progress chart, confusion matrix), stop or abort.
import { api, enc, esc, guarded, projectPath, showMessage } from './api.js'
import { drawLineChart } from './charts.js'

const ENDED = new Set(['ready_for_cleanup'])

function trainerOptions(nodes) {
  const trainers = nodes.filter((n) => n.node_type === 'trainer')
  if (!trainers.length) return '<option value="">no trainer connected</option>'
  return trainers.map((n) => {
    const id = n.node_id ?? n.sid
    return `<option value="${esc(id)}">${esc(n.name ?? id)} (${esc(n.status?.state ?? 'no status')})</option>`
  }).join('')
}

function confusionTable(training, categories) {
  const matrix = training?.last_update?.confusion_matrix
  if (!matrix || !Object.keys(matrix).length) return '<p class="muted">No confusion matrix reported yet.</p>'
  const name = (id) => categories.find((c) => c.id === id)?.name ?? id
  return `<table id="confusion"><thead><tr><th>Category</th><th>TP</th><th>FP</th><th>FN</th></tr></thead><tbody>${Object.entries(matrix)
    .map(([id, c]) => `<tr><td>${esc(name(id))}</td><td>${esc(c.tp)}</td><td>${esc(c.fp)}</td><td>${esc(c.fn)}</td></tr>`).join('')}</tbody></table>`
}

/** Replaces a select's options only when they changed, so a menu the user has open is not closed every second. */
function setOptions(select, html) {
  if (select.dataset.options === html) return
  const chosen = select.value
  select.innerHTML = html
  select.dataset.options = html
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen
}

export async function renderTrainings({ main, project, onLive }) {
  main.innerHTML = `
    <div class="split">
      <div>
        <section class="card">
          <h2>Current training</h2>
          <div id="current"><p class="muted">Waiting for the loop…</p></div>
          <canvas class="chart" id="chart"></canvas>
          <div id="matrix"></div>
        </section>
        <section class="card">
          <h2>All trainings</h2>
          <table><thead><tr><th>#</th><th>State</th><th>Outcome</th><th class="hide-narrow">Trainer</th><th>Models</th></tr></thead><tbody id="trainings"></tbody></table>
        </section>
      </div>
      <section class="card">
        <h2>Start a training</h2>
        <label class="stack">Trainer <select id="trainer"></select></label>
        <label class="stack">Model variant <select id="variant"><option value="">trainer's default</option></select></label>
        <label class="stack">Hyperparameters (JSON) <textarea id="hyperparameters">{"epochs": 3}</textarea></label>
        <button id="start">Start training</button>
      </section>
    </div>`
  onLive((live) => {
    const trainerSelect = main.querySelector('#trainer')
    setOptions(trainerSelect, trainerOptions(live.nodes))
    const trainer = live.nodes.find((n) => (n.node_id ?? n.sid) === trainerSelect.value)
    const variantSelect = main.querySelector('#variant')
    const variants = trainer?.status?.pretrained_models ?? []
    setOptions(variantSelect, `<option value="">trainer's default</option>${variants.map((v) => `<option value="${esc(v.name)}">${esc(v.label ?? v.name)}</option>`).join('')}`)
    const training = live.trainings[0]
    const current = main.querySelector('#current')
    if (!training) {
      current.innerHTML = '<p class="muted">No training yet.</p>'
    } else {
      const node = live.nodes.find((n) => n.node_id === training.trainer_id)
      const status = node?.status
      const running = !training.outcome && status?.context?.project === project.project
      const progress = running && typeof status?.progress === 'number' ? Math.max(0, Math.min(1, status.progress)) : training.outcome === 'completed' ? 1 : undefined
      current.innerHTML = `
        <p id="training-line">Training <strong>${esc(training.number)}</strong>: <span id="training-state">${esc(running && status?.state ? status.state : training.state)}</span>
          ${training.outcome ? `· <span id="training-outcome" class="badge ${training.outcome === 'completed' ? 'complete' : ''}">${esc(training.outcome)}</span>` : ''}
          ${training.error ? `<br><span class="error">${esc(training.error)}</span>` : ''}</p>
        ${progress === undefined ? '' : `<div class="row"><div class="progress" style="flex:1"><div style="width:${Math.round(progress * 100)}%"></div></div><span id="training-progress">${Math.round(progress * 100)}%</span></div>`}
        ${running ? `<p class="row"><button class="quiet" id="stop" data-node="${esc(training.trainer_id)}">Stop</button><button class="danger" id="abort" data-node="${esc(training.trainer_id)}">Abort</button></p>` : ''}`
      const since = Date.parse(training.created_at)
      const points = (live.progress[training.trainer_id] ?? []).filter((p) => p.t >= since && typeof p.progress === 'number').map((p) => ({ t: p.t, value: p.progress }))
      drawLineChart(main.querySelector('#chart'), points, { label: 'progress', max: 1 })
      main.querySelector('#matrix').innerHTML = confusionTable(training, live.categories)
    }
    main.querySelector('#trainings').innerHTML = live.trainings.map((t) => `<tr><td>${esc(t.number)}</td><td>${esc(t.state)}</td><td>${esc(t.outcome ?? '')}</td>
      <td class="hide-narrow">${esc(live.nodes.find((n) => n.node_id === t.trainer_id)?.name ?? t.trainer_id ?? '')}</td>
      <td>${t.models.map((m) => esc(m.version)).join(', ')}</td></tr>`).join('') || '<tr><td colspan="5" class="muted">None.</td></tr>'
  })
  main.querySelector('#start').addEventListener('click', () => void guarded(async () => {
    const node = main.querySelector('#trainer').value
    if (!node) return showMessage('No trainer is connected to this loop.')
    let hyperparameters
    try {
      hyperparameters = JSON.parse(main.querySelector('#hyperparameters').value || '{}')
    } catch (error) {
      return showMessage(`The hyperparameters are not JSON: ${error.message}`)
    }
    const answer = await api(projectPath(project, '/trainings'), { method: 'POST', body: { node, model_variant: main.querySelector('#variant').value, hyperparameters } })
    const accepted = answer.ack?.success === true
    showMessage(accepted ? `Training ${answer.training.number} started.` : `The trainer refused: ${answer.ack?.error_msg ?? 'no answer'}`, accepted)
  }))
  main.querySelector('#current').addEventListener('click', (event) => void guarded(async () => {
    const action = event.target.id === 'stop' ? 'stop-training' : event.target.id === 'abort' ? 'abort-training' : undefined
    if (!action) return
    if (action === 'abort-training' && !confirm('Abort the training? Its progress is lost.')) return
    const { ack } = await api(`/admin/nodes/${enc(event.target.dataset.node)}/${action}`, { method: 'POST' })
    showMessage(ack?.success === false ? `The trainer refused: ${ack.error_msg}` : `${action === 'stop-training' ? 'Stop' : 'Abort'} sent.`, ack?.success !== false)
  }))
}
