// The page's frame: login, project choice, the tabs (hash routes) and the live event stream every view listens to.
import { api, enc, guarded, LoggedOut, showFlash, showMessage, whenLoggedOut } from './api.js'
import { renderImages } from './images-view.js'
import { renderImage } from './image-view.js'
import { renderModels } from './models-view.js'
import { renderTrainings } from './trainings-view.js'
import { renderNodes } from './nodes-view.js'

const state = { project: undefined, projects: [], live: undefined, liveSource: undefined, listeners: new Set() }

/** Views subscribe to live snapshots; the returned function unsubscribes. */
export function onLive(listener) {
  state.listeners.add(listener)
  if (state.live) listener(state.live)
  return () => state.listeners.delete(listener)
}

function stopLive() {
  state.liveSource?.close()
  state.liveSource = undefined
  state.live = undefined
}

function startLive() {
  stopLive()
  if (!state.project) return
  const { organization, project } = state.project
  const source = new EventSource(`/admin/projects/${enc(organization)}/${enc(project)}/live`)
  source.addEventListener('snapshot', (event) => {
    state.live = JSON.parse(event.data)
    for (const listener of state.listeners) listener(state.live)
  })
  source.addEventListener('logout', () => {
    stopLive()
    showLogin()
  })
  state.liveSource = source
}

function showLogin() {
  stopLive()
  document.getElementById('view').replaceChildren()
  const dialog = document.getElementById('login')
  if (!dialog.open) dialog.showModal()
  document.getElementById('username').focus()
}

async function login(event) {
  event.preventDefault()
  const body = { username: document.getElementById('username').value, password: document.getElementById('password').value }
  const response = await fetch('/api/login', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (!response.ok) {
    document.getElementById('login-message').textContent = response.status === 401 ? 'Wrong username or password.' : `Login failed (${response.status}).`
    return
  }
  document.getElementById('login-message').textContent = ''
  document.getElementById('password').value = ''
  document.getElementById('login').close()
  await start()
}

async function logout() {
  await fetch('/api/logout', { method: 'POST', credentials: 'same-origin' })
  showMessage('')
  showLogin()
}

async function loadProjects() {
  const { projects } = await api('/admin/projects')
  state.projects = projects
  const select = document.getElementById('project')
  const previous = localStorage.getItem('loop-project')
  select.replaceChildren(...projects.map((p) => {
    const option = document.createElement('option')
    option.value = `${p.organization}/${p.project}`
    option.textContent = `${p.organization}/${p.project}`
    return option
  }))
  const chosen = projects.find((p) => `${p.organization}/${p.project}` === previous) ?? projects[0]
  state.project = chosen
  if (chosen) select.value = `${chosen.organization}/${chosen.project}`
}

async function route() {
  const hash = location.hash.replace(/^#/, '')
  const [view, ...rest] = hash.split('?')[0].split('/')
  for (const link of document.querySelectorAll('#tabs a')) link.classList.toggle('active', link.dataset.view === (view === 'image' ? 'images' : view || 'images'))
  state.listeners.clear()
  // each view renders into an element of its own: a request the previous view still awaits (a click's answer, an
  // image loading) then updates that detached element, not the view now shown
  const main = document.createElement('div')
  document.getElementById('view').replaceChildren(main)
  if (!state.project) {
    main.textContent = 'This loop has no project yet: create one with `learning-loop-node loop admin projects create`.'
    return
  }
  const context = { main, project: state.project, onLive }
  await guarded(async () => {
    if (view === 'image') await renderImage(context, decodeURIComponent(rest.join('/')))
    else if (view === 'models') await renderModels(context)
    else if (view === 'trainings') await renderTrainings(context)
    else if (view === 'nodes') await renderNodes(context)
    else await renderImages(context)
  })
}

async function start() {
  try {
    const session = await api('/admin/session')
    if (!session.logged_in) return showLogin()
    await loadProjects()
  } catch (error) {
    if (!(error instanceof LoggedOut)) showMessage(error.message)
    return
  }
  startLive()
  await route()
}

whenLoggedOut(showLogin)
document.getElementById('login-form').addEventListener('submit', (event) => void login(event))
document.getElementById('logout').addEventListener('click', () => void logout())
document.getElementById('project').addEventListener('change', (event) => {
  localStorage.setItem('loop-project', event.target.value)
  state.project = state.projects.find((p) => `${p.organization}/${p.project}` === event.target.value)
  startLive()
  location.hash = '#images'
  void route()
})
window.addEventListener('hashchange', () => {
  showFlash()
  void route()
})
void start()
