// One image: drawn with its detections and annotations; annotate (a box, a point, or an annotator's outline), edit,
// delete, and move the image's state.
import { api, enc, esc, guarded, projectPath, showMessage } from './api.js'
import { colourOf, drawImage, imagePoint, percent, showSvgOverlay } from './image-canvas.js'

const STATES = ['inbox', 'annotate', 'review', 'complete', 'trash']

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image()
    image.onload = () => resolve(image)
    image.onerror = () => reject(new Error(`the image ${url} could not be loaded`))
    image.src = url
  })
}

const categoryOptions = (categories, chosen) => categories.map((c) => `<option value="${esc(c.id)}"${c.id === chosen ? ' selected' : ''}>${esc(c.name)} (${esc(c.type ?? 'any')})</option>`).join('')

function annotationRows(data, categories) {
  const rows = []
  const swatch = (a) => `<span class="swatch" style="background:${colourOf(categories, a.category_id, a.category_name)}"></span>`
  data.box_annotations.forEach((a, i) => rows.push(`<li data-kind="box" data-index="${i}">${swatch(a)} box
    <select class="category" aria-label="category">${categoryOptions(categories, a.category_id)}</select>
    <span class="muted">${a.x},${a.y} ${a.width}×${a.height}</span>
    <button class="quiet redraw">Redraw</button><button class="danger delete">Delete</button></li>`))
  data.point_annotations.forEach((a, i) => rows.push(`<li data-kind="point" data-index="${i}">${swatch(a)} point ${esc(a.category_name)}
    <span class="muted">${Math.round(a.x)},${Math.round(a.y)}</span><button class="danger delete">Delete</button></li>`))
  data.segmentation_annotations.forEach((a, i) => rows.push(`<li data-kind="segmentation" data-index="${i}">${swatch(a)} outline
    ${esc(categories.find((c) => c.id === a.category_id)?.name ?? a.category_id)} <span class="muted">${a.shape.points.length} points</span>
    <button class="danger delete">Delete</button></li>`))
  return rows.join('') || '<li class="muted">No annotations yet.</li>'
}

function detectionRows(data) {
  const rows = [
    ...(data.box_detections ?? []).map((d) => `box ${esc(d.category_name)} <strong>${percent(d.confidence)}</strong> <span class="muted">${esc(d.model_name)}</span>`),
    ...(data.point_detections ?? []).map((d) => `point ${esc(d.category_name)} <strong>${percent(d.confidence)}</strong>`),
    ...(data.segmentation_detections ?? []).map((d) => `outline ${esc(d.category_name)} <strong>${percent(d.confidence)}</strong>`),
    ...(data.classification_detections ?? []).map((d) => `class ${esc(d.category_name)} <strong>${percent(d.confidence)}</strong>`),
  ]
  return rows.map((r) => `<li>${r}</li>`).join('') || '<li class="muted">No detections.</li>'
}

export async function renderImage({ main, project }, id) {
  const path = projectPath(project, `/images/${enc(id)}`)
  let { image: data, categories } = await api(`${path}/view`)
  const picture = await loadImage(`${path}/file`)
  main.innerHTML = `
    <p><a href="#images">← Images</a></p>
    <div class="split">
      <section class="card">
        <div class="stage"><canvas id="canvas" aria-label="image"></canvas><svg id="overlay"></svg></div>
        <p class="muted" id="hint">Drag on the image to annotate.</p>
      </section>
      <div>
        <section class="card">
          <h2>Annotate</h2>
          <label class="stack">Tool <select id="tool">
            <option value="annotator">outline by the annotator node</option>
            <option value="box">box</option><option value="point">point</option></select></label>
          <label class="stack">Category <select id="category">${categoryOptions(categories)}</select></label>
          <label class="stack">State <span class="row"><select id="state">${STATES.map((s) => `<option${s === data.state ? ' selected' : ''}>${s}</option>`).join('')}</select>
            <button id="move">Move</button></span></label>
          <label class="row muted"><input type="checkbox" id="hide-detections"> hide detections</label>
        </section>
        <section class="card"><h2>Annotations</h2><ul class="plain" id="annotations"></ul></section>
        <section class="card"><h2>Detections</h2><ul class="plain" id="detections"></ul>
          <p class="muted">${esc(data.width)}×${esc(data.height)} · ${esc(data.created)} · ${esc(data.source ?? 'no source')} · tags: ${esc((data.tags ?? []).join(', ') || 'none')}</p></section>
      </div>
    </div>`
  const canvas = main.querySelector('#canvas')
  const overlay = main.querySelector('#overlay')
  let redrawing
  const redraw = (extra) => {
    drawImage(canvas, picture, data, categories, { hideDetections: main.querySelector('#hide-detections').checked })
    if (extra) {
      const ctx = canvas.getContext('2d')
      ctx.setLineDash([8, 5])
      ctx.strokeStyle = '#ffeb3b'
      ctx.lineWidth = Math.max(2, canvas.width / 400)
      ctx.strokeRect(Math.min(extra.x0, extra.x1), Math.min(extra.y0, extra.y1), Math.abs(extra.x1 - extra.x0), Math.abs(extra.y1 - extra.y0))
    }
  }
  const refresh = (image) => {
    data = image
    main.querySelector('#annotations').innerHTML = annotationRows(data, categories)
    main.querySelector('#detections').innerHTML = detectionRows(data)
    redraw()
  }
  refresh(data)
  main.querySelector('#hide-detections').addEventListener('change', () => redraw())
  main.querySelector('#move').addEventListener('click', () => void guarded(async () => {
    const { image } = await api(`${path}/state`, { method: 'PUT', body: { state: main.querySelector('#state').value } })
    refresh(image)
    showMessage(`The image is now in ${image.state}.`, true)
  }))
  main.querySelector('#annotations').addEventListener('click', (event) => void guarded(async () => {
    const row = event.target.closest('li[data-kind]')
    if (!row) return
    const { kind, index } = row.dataset
    if (event.target.classList.contains('delete')) {
      refresh((await api(`${path}/annotations/${kind}/${index}`, { method: 'DELETE' })).image)
    } else if (event.target.classList.contains('redraw')) {
      redrawing = Number(index)
      main.querySelector('#tool').value = 'box'
      main.querySelector('#hint').textContent = `Draw the new box for box annotation ${Number(index) + 1}.`
    }
  }))
  main.querySelector('#annotations').addEventListener('change', (event) => void guarded(async () => {
    const row = event.target.closest('li[data-kind="box"]')
    if (!row || !event.target.classList.contains('category')) return
    const box = data.box_annotations[Number(row.dataset.index)]
    const body = { kind: 'box', category_id: event.target.value, x: box.x, y: box.y, width: box.width, height: box.height }
    refresh((await api(`${path}/annotations/box/${row.dataset.index}`, { method: 'PUT', body })).image)
  }))

  let drag
  canvas.addEventListener('pointerdown', (event) => {
    const start = imagePoint(canvas, event)
    drag = { x0: start.x, y0: start.y, x1: start.x, y1: start.y }
    canvas.setPointerCapture(event.pointerId)
  })
  canvas.addEventListener('pointermove', (event) => {
    if (!drag) return
    const point = imagePoint(canvas, event)
    drag.x1 = point.x
    drag.y1 = point.y
    redraw(drag)
  })
  canvas.addEventListener('pointerup', () => void guarded(async () => {
    if (!drag) return
    const box = { x0: Math.min(drag.x0, drag.x1), y0: Math.min(drag.y0, drag.y1), x1: Math.max(drag.x0, drag.x1), y1: Math.max(drag.y0, drag.y1) }
    drag = undefined
    const tool = main.querySelector('#tool').value
    const category_id = main.querySelector('#category').value
    if (!category_id) return showMessage('This project has no categories to annotate with.')
    if (tool === 'point') {
      refresh((await api(`${path}/annotations`, { method: 'POST', body: { kind: 'point', category_id, x: box.x1, y: box.y1 } })).image)
      return
    }
    if (box.x1 - box.x0 < 3 || box.y1 - box.y0 < 3) return redraw()
    if (tool === 'box') {
      const body = { kind: 'box', category_id, x: box.x0, y: box.y0, width: box.x1 - box.x0, height: box.y1 - box.y0 }
      const url = redrawing === undefined ? `${path}/annotations` : `${path}/annotations/box/${redrawing}`
      refresh((await api(url, { method: redrawing === undefined ? 'POST' : 'PUT', body })).image)
      redrawing = undefined
      main.querySelector('#hint').textContent = 'Drag on the image to annotate.'
      return
    }
    main.querySelector('#hint').textContent = 'The annotator node is outlining the object…'
    try {
      const answer = await api(`${path}/annotate`, { method: 'POST', body: { category_id, ...box } })
      showSvgOverlay(overlay, answer.svg, canvas.width, canvas.height)
      main.querySelector('#hint').textContent = answer.annotation
        ? `The annotator's outline (${answer.annotation.shape.points.length} points) is stored as an annotation.`
        : 'The annotator answered without storing an annotation.'
      refresh((await api(`${path}/view`)).image)
    } catch (error) {
      main.querySelector('#hint').textContent = 'Drag on the image to annotate.'
      redraw()
      throw error
    }
  }))
}
