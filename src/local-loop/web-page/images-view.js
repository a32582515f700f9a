// Images: the gallery (paged and filtered on the server, thumbnails made once) and the upload.
import { api, enc, esc, flash, guarded, projectPath, showMessage } from './api.js'

const STATES = ['inbox', 'annotate', 'review', 'complete', 'trash']
const FILTERS = ['state', 'tag', 'source', 'camera', 'from', 'to']

/** The gallery's filter and page, kept in the URL hash (#images?state=inbox&page=2) so back and reload keep them. */
function readFilter() {
  const query = new URLSearchParams(location.hash.split('?')[1] ?? '')
  const filter = {}
  for (const key of [...FILTERS, 'page']) if (query.get(key)) filter[key] = query.get(key)
  return filter
}

function writeFilter(filter) {
  const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v !== undefined && v !== ''))
  const next = `#images${query.size ? `?${query}` : ''}`
  if (location.hash === next) window.dispatchEvent(new HashChangeEvent('hashchange'))
  else location.hash = next
}

const options = (values, chosen, anyText) =>
  [`<option value="">${esc(anyText)}</option>`, ...values.map((v) => `<option${v === chosen ? ' selected' : ''}>${esc(v)}</option>`)].join('')

export async function renderImages({ main, project }) {
  const filter = readFilter()
  const query = new URLSearchParams({ ...filter, per_page: '48' })
  const page = await api(projectPath(project, `/gallery?${query}`))
  const pages = Math.max(1, Math.ceil(page.total / page.per_page))
  main.innerHTML = `
    <section class="card">
      <h2>Images <span class="muted">${page.total} in ${esc(project.organization)}/${esc(project.project)}</span></h2>
      <form class="filters" id="filters">
        <label>State <select name="state">${options(STATES, filter.state, 'any state')}</select></label>
        <label>Tag <select name="tag">${options(page.facets.tags, filter.tag, 'any tag')}</select></label>
        <label>Source <select name="source">${options(page.facets.sources, filter.source, 'any source')}</select></label>
        <label>Camera <select name="camera">${options(page.facets.cameras, filter.camera, 'any camera')}</select></label>
        <label>Created from <input type="date" name="from" value="${esc(filter.from)}"></label>
        <label>Created to <input type="date" name="to" value="${esc(filter.to)}"></label>
      </form>
      <div class="gallery" id="gallery">
        ${page.images.map((image) => `
          <a class="thumb" href="#image/${enc(image.id)}" data-id="${esc(image.id)}" title="${esc(image.created)} · ${esc(image.source ?? '')}">
            <img loading="lazy" alt="image ${esc(image.id)}" width="160" height="120" src="${projectPath(project, `/images/${enc(image.id)}/thumbnail`)}">
            <span class="meta"><span class="badge ${esc(image.state)}">${esc(image.state)}</span>
            <span title="annotations · detections">${image.annotations} ✎ · ${image.detections} ◻</span></span>
          </a>`).join('') || '<p class="muted">No images match.</p>'}
      </div>
      <div class="row pager">
        <button class="quiet" id="previous" ${page.page <= 1 ? 'disabled' : ''}>Previous</button>
        <span id="page-info">page ${page.page} of ${pages}</span>
        <button class="quiet" id="next" ${page.page >= pages ? 'disabled' : ''}>Next</button>
      </div>
    </section>
    <section class="card">
      <h2>Upload</h2>
      <div class="row">
        <input type="file" id="upload-files" accept="image/jpeg" multiple>
        <input id="upload-tags" placeholder="tags, comma separated">
        <button id="upload">Upload</button>
      </div>
    </section>`
  main.querySelector('#filters').addEventListener('change', (event) => {
    const form = new FormData(event.currentTarget)
    writeFilter(Object.fromEntries(FILTERS.map((key) => [key, form.get(key) ?? ''])))
  })
  const goTo = (number) => writeFilter({ ...filter, page: String(number) })
  main.querySelector('#previous').addEventListener('click', () => goTo(page.page - 1))
  main.querySelector('#next').addEventListener('click', () => goTo(page.page + 1))
  main.querySelector('#upload').addEventListener('click', () => void guarded(async () => {
    const files = main.querySelector('#upload-files').files
    if (!files.length) return showMessage('Choose one or more JPEG files first.')
    const form = new FormData()
    for (const file of files) form.append('files', file, file.name)
    form.append('tags', main.querySelector('#upload-tags').value)
    const { ids } = await api(projectPath(project, '/images'), { method: 'POST', form })
    flash(`Uploaded ${ids.length} image${ids.length === 1 ? '' : 's'}.`, true)
    writeFilter({})
  }))
}
