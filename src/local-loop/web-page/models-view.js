// Models: every version with its formats, training and metrics; deploy one, download a format.
import { api, enc, esc, guarded, projectPath, showMessage } from './api.js'

/** Precision and recall over all categories of a training's confusion matrix, or undefined without one. */
export function trainingMetrics(training) {
  const matrix = training?.last_update?.confusion_matrix
  if (!matrix || !Object.keys(matrix).length) return undefined
  let tp = 0, fp = 0, fn = 0
  for (const counts of Object.values(matrix)) {
    tp += counts.tp
    fp += counts.fp
    fn += counts.fn
  }
  const ratio = (a, b) => (b === 0 ? '–' : `${Math.round((a / b) * 100)}%`)
  return { precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn) }
}

export async function renderModels({ main, project, onLive }) {
  const [{ models }, { trainings }] = await Promise.all([api(projectPath(project, '/models')), api(projectPath(project, '/trainings'))])
  main.innerHTML = `
    <section class="card">
      <h2>Models <span class="muted" id="deployed"></span></h2>
      <table><thead><tr><th>Version</th><th>Formats</th><th class="hide-narrow">Training</th><th>Metrics</th><th class="hide-narrow">Created</th><th></th></tr></thead>
      <tbody id="models"></tbody></table>
    </section>`
  const body = main.querySelector('#models')
  const render = (target) => {
    main.querySelector('#deployed').textContent = target ? `deployment target: ${target.version}` : 'no deployment target'
    body.innerHTML = [...models].reverse().map((m) => {
      const metrics = trainingMetrics(trainings.find((t) => t.number === m.training_number))
      const deployed = target?.model_uuid === m.id
      const downloads = m.formats.map((f) => `<a href="/api/${enc(project.organization)}/projects/${enc(project.project)}/models/${enc(m.id)}/${enc(f)}/file" download>${esc(f)}</a>`).join(' · ')
      return `<tr data-id="${esc(m.id)}" data-version="${esc(m.version)}">
        <td><strong>${esc(m.version)}</strong>${deployed ? ' <span class="badge complete">deployed</span>' : ''}</td>
        <td>${downloads}</td><td class="hide-narrow">${esc(m.training_number)}</td>
        <td>${metrics ? `precision ${metrics.precision}<br>recall ${metrics.recall}` : '<span class="muted">none reported</span>'}</td>
        <td class="hide-narrow">${esc(m.created)}</td>
        <td><button class="deploy" ${deployed ? 'disabled' : ''}>Deploy</button></td></tr>`
    }).join('') || '<tr><td colspan="6" class="muted">No models yet: start a training.</td></tr>'
  }
  render(undefined)
  onLive((live) => render(live.deployment_target))
  body.addEventListener('click', (event) => void guarded(async () => {
    if (!event.target.classList.contains('deploy')) return
    const row = event.target.closest('tr')
    const answer = await api(projectPath(project, '/deployment-target'), { method: 'PUT', body: { model_id: row.dataset.id } })
    showMessage(`Version ${answer.version} is the deployment target; detectors that follow the loop switch to it.`, true)
    render({ model_uuid: answer.model_uuid, version: answer.version })
  }))
}
