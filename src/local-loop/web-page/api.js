// Talking to the local Loop: JSON over fetch with the session cookie; a 401 anywhere opens the login dialog.

export class LoggedOut extends Error {}

let onLoggedOut = () => {}
export function whenLoggedOut(handler) {
  onLoggedOut = handler
}

/** fetch → JSON; throws an Error with the server's `detail` for any other status than 2xx. */
export async function api(path, { method = 'GET', body, form } = {}) {
  const init = { method, credentials: 'same-origin', headers: {} }
  if (form) init.body = form
  else if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers['content-type'] = 'application/json'
  }
  const response = await fetch(path, init)
  if (response.status === 401) {
    onLoggedOut()
    throw new LoggedOut('not logged in')
  }
  const type = response.headers.get('content-type') ?? ''
  const answer = type.includes('application/json') ? await response.json() : await response.text()
  if (!response.ok) throw new Error(typeof answer === 'object' && answer?.detail ? answer.detail : `${response.status} ${String(answer).slice(0, 200)}`)
  return answer
}

export const enc = encodeURIComponent

/** The path of a project's web page API. */
export const projectPath = (project, rest = '') => `/admin/projects/${enc(project.organization)}/${enc(project.project)}${rest}`

/** Text for HTML: escapes what could open a tag or attribute. */
export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
}

export function showMessage(text, ok = false) {
  const element = document.getElementById('message')
  element.textContent = text
  element.className = ok ? 'ok' : ''
}

let pending
/** A message for the view the page is about to show (navigating clears the message bar, then shows this). */
export function flash(text, ok = false) {
  pending = { text, ok }
}

export function showFlash() {
  showMessage(pending?.text ?? '', pending?.ok)
  pending = undefined
}

/** Runs `work`, showing its error (not a logout, which the dialog handles) in the message bar. */
export async function guarded(work) {
  try {
    return await work()
  } catch (error) {
    if (!(error instanceof LoggedOut)) showMessage(error.message)
    return undefined
  }
}
