// Drawing an image with its detections (dashed, with confidences) and annotations (solid) on a canvas, in image pixels.

const DEFAULT_COLOUR = '#00c853'

export function colourOf(categories, categoryId, name) {
  const category = categories.find((c) => c.id === categoryId) ?? categories.find((c) => c.name === name)
  return category?.color && /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})$/.test(category.color) ? category.color : DEFAULT_COLOUR
}

/** Detectors report 0–1, trainers percent (§6.3): shown as percent either way. */
export function percent(confidence) {
  if (typeof confidence !== 'number') return ''
  return `${Math.round(confidence <= 1 ? confidence * 100 : confidence)}%`
}

function label(ctx, text, x, y, colour, scale) {
  ctx.font = `${Math.round(13 * scale)}px system-ui, sans-serif`
  const width = ctx.measureText(text).width + 6 * scale
  const height = 17 * scale
  const top = Math.max(0, y - height)
  ctx.fillStyle = colour
  ctx.fillRect(x, top, width, height)
  ctx.fillStyle = '#000'
  ctx.fillText(text, x + 3 * scale, top + 13 * scale)
}

function polygon(ctx, points) {
  ctx.beginPath()
  points.forEach((p, i) => (i === 0 ? ctx.moveTo(p.x, p.y) : ctx.lineTo(p.x, p.y)))
  ctx.closePath()
}

/** Draws `image` (an HTMLImageElement) and the overlays of `data` (image data as the Loop returns it). */
export function drawImage(canvas, image, data, categories, { hideDetections = false } = {}) {
  canvas.width = image.naturalWidth
  canvas.height = image.naturalHeight
  const ctx = canvas.getContext('2d')
  ctx.drawImage(image, 0, 0)
  // lines and labels keep their on-screen size whatever the image's size
  const scale = Math.max(1, canvas.width / Math.max(1, canvas.clientWidth || canvas.width))
  ctx.lineWidth = 2 * scale
  if (!hideDetections) {
    ctx.setLineDash([6 * scale, 4 * scale])
    for (const d of data.box_detections ?? []) {
      const colour = colourOf(categories, d.category_id, d.category_name)
      ctx.strokeStyle = colour
      ctx.strokeRect(d.x, d.y, d.width, d.height)
      label(ctx, `${d.category_name} ${percent(d.confidence)}`, d.x, d.y, colour, scale)
    }
    for (const d of data.segmentation_detections ?? []) {
      const colour = colourOf(categories, d.category_id, d.category_name)
      ctx.strokeStyle = colour
      polygon(ctx, d.shape?.points ?? [])
      ctx.stroke()
      const first = d.shape?.points?.[0]
      if (first) label(ctx, `${d.category_name} ${percent(d.confidence)}`, first.x, first.y, colour, scale)
    }
    ctx.setLineDash([])
    for (const d of data.point_detections ?? []) {
      const colour = colourOf(categories, d.category_id, d.category_name)
      ctx.fillStyle = colour
      ctx.beginPath()
      ctx.arc(d.x, d.y, 3 * scale, 0, 2 * Math.PI)
      ctx.fill()
    }
  }
  ctx.setLineDash([])
  ctx.lineWidth = 3 * scale
  for (const a of data.box_annotations ?? []) {
    const colour = colourOf(categories, a.category_id, a.category_name)
    ctx.strokeStyle = colour
    ctx.strokeRect(a.x, a.y, a.width, a.height)
    label(ctx, a.category_name, a.x, a.y + a.height + 17 * scale, colour, scale)
  }
  for (const a of data.segmentation_annotations ?? []) {
    const colour = colourOf(categories, a.category_id)
    ctx.strokeStyle = colour
    ctx.fillStyle = `${colour}33`
    polygon(ctx, a.shape?.points ?? [])
    ctx.fill()
    ctx.stroke()
  }
  for (const a of data.point_annotations ?? []) {
    const colour = colourOf(categories, a.category_id, a.category_name)
    ctx.strokeStyle = colour
    ctx.beginPath()
    ctx.arc(a.x, a.y, 6 * scale, 0, 2 * Math.PI)
    ctx.stroke()
  }
}

/** The image pixel under a pointer event. */
export function imagePoint(canvas, event) {
  const rect = canvas.getBoundingClientRect()
  return {
    x: Math.round(((event.clientX - rect.left) / rect.width) * canvas.width),
    y: Math.round(((event.clientY - rect.top) / rect.height) * canvas.height),
  }
}

const SVG_ELEMENTS = new Set(['rect', 'polygon', 'polyline', 'circle', 'path', 'line', 'g'])
const SVG_ATTRIBUTES = /^(x|y|x1|y1|x2|y2|cx|cy|r|width|height|points|d|fill|stroke|stroke-width|stroke-dasharray|stroke-opacity|fill-opacity|stroke-linecap|stroke-linejoin|opacity)$/

/** The annotator's SVG fragment as elements of `svg`, keeping only drawing elements and attributes (no scripts, links or styles). */
export function showSvgOverlay(svg, fragment, width, height) {
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  const parsed = new DOMParser().parseFromString(`<svg xmlns="http://www.w3.org/2000/svg">${fragment}</svg>`, 'image/svg+xml')
  const copy = (node) => {
    if (!SVG_ELEMENTS.has(node.localName)) return undefined
    const element = document.createElementNS('http://www.w3.org/2000/svg', node.localName)
    for (const attribute of node.attributes) if (SVG_ATTRIBUTES.test(attribute.name)) element.setAttribute(attribute.name, attribute.value)
    for (const child of node.children) {
      const copied = copy(child)
      if (copied) element.append(copied)
    }
    return element
  }
  svg.replaceChildren(...[...parsed.documentElement.children].map(copy).filter(Boolean))
}
