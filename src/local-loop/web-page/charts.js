// A small line chart on a canvas (progress or loss over time), drawn without a library, and drawn again when the
// canvas changes size (a phone turned, a window resized) so its text stays sharp.

const drawn = new WeakMap()
const observer = typeof ResizeObserver === 'function'
  ? new ResizeObserver((entries) => {
    for (const entry of entries) {
      const last = drawn.get(entry.target)
      if (last) paint(entry.target, ...last)
    }
  })
  : undefined

export function drawLineChart(canvas, points, options = {}) {
  if (!drawn.has(canvas)) observer?.observe(canvas)
  drawn.set(canvas, [points, options])
  paint(canvas, points, options)
}

function paint(canvas, points, { label = '', max } = {}) {
  const ratio = window.devicePixelRatio || 1
  canvas.width = Math.max(1, canvas.clientWidth * ratio)
  canvas.height = Math.max(1, canvas.clientHeight * ratio)
  const ctx = canvas.getContext('2d')
  ctx.scale(ratio, ratio)
  const width = canvas.clientWidth
  const height = canvas.clientHeight
  const pad = { left: 36, right: 8, top: 18, bottom: 18 }
  ctx.clearRect(0, 0, width, height)
  ctx.font = '11px system-ui, sans-serif'
  ctx.fillStyle = '#5b6675'
  ctx.fillText(label, pad.left, 12)
  if (points.length === 0) {
    ctx.fillText('nothing reported yet', pad.left, height / 2)
    return
  }
  const t0 = points[0].t
  const t1 = Math.max(points.at(-1).t, t0 + 1)
  const top = max ?? Math.max(...points.map((p) => p.value), 1e-9)
  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right)
  const y = (v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom)
  ctx.strokeStyle = '#d6dbe1'
  ctx.beginPath()
  ctx.moveTo(pad.left, y(0))
  ctx.lineTo(width - pad.right, y(0))
  ctx.moveTo(pad.left, y(top))
  ctx.lineTo(width - pad.right, y(top))
  ctx.stroke()
  ctx.fillText(String(Math.round(top * 100) / 100), 2, y(top) + 4)
  ctx.fillText('0', 2, y(0) + 4)
  ctx.fillText(`${Math.round((t1 - t0) / 1000)} s`, width - pad.right - 30, height - 4)
  ctx.strokeStyle = '#1565c0'
  ctx.lineWidth = 2
  ctx.beginPath()
  points.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.t), y(p.value)) : ctx.lineTo(x(p.t), y(p.value))))
  ctx.stroke()
}
