// The page: sign in, pick a project and a document, edit it together, run it.
// Navigation lives in the URL hash (#/projects/P/documents/D), so a reload or
// a shared link opens the same document.

import { api, ApiError, keepSessionFresh, refreshTokens } from './api.js'
import { $, h, onSubmit, show, toast } from './dom.js'
import { colorFor, openEditor } from './editor.js'
import { openHistory } from './history.js'
import { followJob, runDocument } from './jobs.js'
import { acceptPendingInvite, resetInviteForm, setupInviteForm, takeInviteFromUrl } from './invites.js'
import { followEvents } from './live.js'
import { renderMembers, setupMemberForm } from './members.js'
import { jobStatus, outputView, resetOutput, starterId } from './output.js'
import { clearSession, dropCookie, getSession, onSessionChange, saveTokens } from './session.js'

const state = {
  projects: [], project: null, documents: [], document: null, members: [], editor: null, job: null, live: null, submitting: false
}

const CLOSE_MESSAGES = {
  4400: 'the server could not read a message',
  4401: 'your session has expired; sign in again',
  4403: 'you have no access to this document (not a member, or access revoked)',
  4404: 'this document does not exist or was deleted',
  4413: 'a change was too large for the server',
}

// --- signing in -------------------------------------------------------------

function showAuth (message) {
  state.live?.stop()
  state.live = null
  closeDocument()
  state.project = null
  show($('#app-view'), false)
  show($('#whoami'), false)
  show($('#logout'), false)
  show($('#auth-view'))
  $('#auth-message').textContent = message || ''
  show($('#auth-message'), Boolean(message))
}

function setupAuth () {
  for (const tab of document.querySelectorAll('[data-auth-tab]')) {
    tab.addEventListener('click', () => selectAuthTab(tab.dataset.authTab))
  }
  onSubmit($('#login-form'), async ({ email, password }) => {
    saveTokens(await api('POST', '/api/auth/login', { email, password }, { auth: false }))
    await showApp()
  })
  onSubmit($('#register-form'), async ({ email, password, display_name: displayName }) => {
    const body = { email, password, display_name: displayName }
    saveTokens(await api('POST', '/api/auth/register', body, { auth: false }))
    await showApp()
  })
  $('#logout').addEventListener('click', async () => {
    const session = getSession()
    try {
      await api('POST', '/api/auth/logout', { refresh_token: session.refreshToken })
    } catch {
      // Signing out locally is what matters.
    }
    clearSession()
  })
}

function selectAuthTab (name) {
  for (const tab of document.querySelectorAll('[data-auth-tab]')) {
    tab.setAttribute('aria-selected', String(tab.dataset.authTab === name))
  }
  show($('#login-form'), name === 'login')
  show($('#register-form'), name === 'register')
}

// --- projects and documents ---------------------------------------------------

async function showApp () {
  const { user } = getSession()
  show($('#auth-view'), false)
  show($('#app-view'))
  const who = $('#whoami')
  who.replaceChildren(h('span', { class: 'dot', style: { background: colorFor(user.id) } }), user.display_name)
  who.title = user.email
  show(who)
  show($('#logout'))
  await loadProjects()
  await joinInvitedProject()
  await route()
  state.live?.stop()
  state.live = followEvents({ onEvent: liveEvent, onOpen: () => refreshLists().catch(reportError) })
}

/** Accept an invitation link opened before (or instead of) signing in, and open the project. */
async function joinInvitedProject () {
  const project = await acceptPendingInvite()
  if (!project) return
  await loadProjects()
  location.hash = `#/projects/${project.id}`
}

async function loadProjects () {
  state.projects = (await api('GET', '/api/projects')).items
  renderProjects()
}

/** The names that occur more than once in `items`. */
function repeatedNames (items) {
  const seen = new Set()
  const repeated = new Set()
  for (const { name } of items) (seen.has(name) ? repeated : seen).add(name)
  return repeated
}

/**
 * A list entry's link: the name, and where two entries share it (a fork, a
 * second "main.py") a short id suffix, with the creation time as a tooltip.
 */
function entryLink (href, item, repeated) {
  const created = item.created_at ? `created ${new Date(item.created_at).toLocaleString()}` : ''
  const suffix = repeated.has(item.name) ? h('span', { class: 'id-suffix' }, ` #${item.id.slice(0, 6)}`) : null
  return h('a', { href, title: created }, item.name, suffix)
}

function renderProjects () {
  const repeated = repeatedNames(state.projects)
  const items = state.projects.map((p) => h('li', { class: p.id === state.project?.id ? 'active' : '', dataset: { id: p.id } },
    entryLink(`#/projects/${p.id}`, p, repeated),
    h('span', { class: `role ${p.role}` }, p.role)))
  $('#projects').replaceChildren(...items)
  show($('#no-projects'), state.projects.length === 0)
}

function renderDocuments () {
  const { project, documents } = state
  const repeated = repeatedNames(documents)
  const items = documents.map((d) => h('li', { class: d.id === state.document?.id ? 'active' : '', dataset: { id: d.id } },
    entryLink(`#/projects/${project.id}/documents/${d.id}`, d, repeated),
    h('span', { class: 'lang' }, d.language)))
  $('#documents').replaceChildren(...items)
  $('#documents-title').textContent = project.name
  show($('#no-documents'), documents.length === 0)
  show($('#new-document'), project.role !== 'viewer')
}

function parseHash () {
  const match = location.hash.match(/^#\/projects\/([\w-]+)(?:\/documents\/([\w-]+))?/)
  return match ? { projectId: match[1], documentId: match[2] } : {}
}

async function route () {
  if (!getSession()) return
  const { projectId, documentId } = parseHash()
  try {
    if (!projectId) {
      closeDocument()
      state.project = null
    } else if (projectId !== state.project?.id) {
      await selectProject(projectId)
    }
    if (!documentId) closeDocument()
    else if (documentId !== state.document?.id) await selectDocument(documentId)
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error
    toast('That project or document does not exist, or you are not a member.', 'error')
    location.hash = ''
  }
  show($('#project-panels'), Boolean(state.project))
  renderProjects()
  if (state.project) renderDocuments()
  show($('#empty-state'), !state.document)
  show($('#doc-view'), Boolean(state.document))
}

async function selectProject (projectId) {
  closeDocument()
  state.lostAccess = false
  // Events about this project that arrive while it loads may postdate the
  // lists read below: remember them and read the lists again afterwards.
  state.loadingProjectId = projectId
  state.missedWhileLoading = false
  try {
    const [project, documents] = await Promise.all([
      api('GET', `/api/projects/${projectId}`),
      api('GET', `/api/projects/${projectId}/documents`)
    ])
    state.project = project
    state.documents = documents.items
    resetInviteForm(project)
    state.members = await renderMembers(project, getSession().user)
  } finally {
    state.loadingProjectId = null
  }
  if (state.missedWhileLoading) projectChanged()
}

/** True when an event about ``projectId`` concerns the open project (or the one loading). */
function aboutOpenProject (projectId) {
  if (projectId === state.loadingProjectId) state.missedWhileLoading = true
  return projectId === state.project?.id
}

function setupForms () {
  onSubmit($('#new-project'), async ({ name }, form) => {
    const project = await api('POST', '/api/projects', { name: name.trim() })
    form.reset()
    state.projects.push(project)
    location.hash = `#/projects/${project.id}`
  })
  const docForm = $('#new-document')
  // Guess the language from the file name; the select can still override it.
  docForm.elements.name.addEventListener('input', (event) => {
    const name = event.target.value.trim().toLowerCase()
    const guess = name.endsWith('.py') ? 'python' : /\.(m?js|cjs)$/.test(name) ? 'javascript' : null
    if (guess) docForm.elements.language.value = guess
  })
  onSubmit(docForm, async ({ name, language }, form) => {
    const project = state.project
    const doc = await api('POST', `/api/projects/${project.id}/documents`, { name: name.trim(), language })
    form.reset()
    state.documents.push(doc)
    location.hash = `#/projects/${project.id}/documents/${doc.id}`
  })
  setupMemberForm(() => ({ project: state.project, me: getSession().user }))
  setupInviteForm(() => ({ project: state.project }))
}

// --- the open document --------------------------------------------------------

// Selections started so far: a route and a hash change arriving together must
// not both open an editor (the older one gives way once its request returns).
let selections = 0

async function selectDocument (documentId) {
  const selection = ++selections
  closeDocument()
  const doc = await api('GET', `/api/documents/${documentId}`)
  if (selection !== selections) return
  state.document = doc
  const readOnly = state.project.role === 'viewer'
  $('#doc-title').textContent = doc.name
  $('#doc-lang').textContent = doc.language
  $('#run').disabled = !canRun()
  $('#run').title = doc.language === 'text' ? 'Plain text cannot be run'
    : readOnly ? 'Viewers cannot run code' : 'Run the current text (Ctrl+Enter)'
  resetOutputPane()
  state.editor = openEditor($('#editor'), {
    document: doc,
    readOnly,
    on: { status: (s) => connectionChanged(doc, s), peers: renderPeers, run }
  })
  state.history = openHistory($('#history'), { document: doc, canWrite: !readOnly })
}

function closeDocument () {
  state.job?.stop()
  state.job = null
  state.editor?.destroy()
  state.editor = null
  state.history?.destroy()
  state.history = null
  state.document = null
  $('#editor').replaceChildren()
  renderPeers([])
}

function renderPeers (peers) {
  $('#peers').replaceChildren(...peers.map(({ name, color }) =>
    h('span', { class: 'peer', title: `${name} is here` },
      h('span', { class: 'dot', style: { background: color } }), name)))
}

function setConnection (kind, text, { reconnect = false } = {}) {
  const box = $('#conn')
  box.className = `conn ${kind}`
  box.dataset.state = kind
  box.replaceChildren(h('span', { class: 'dot' }), text)
  if (reconnect) {
    box.append(h('button', { class: 'link', onclick: () => state.editor?.reconnect() }, 'Reconnect'))
  }
}

let lastAuthRetry = 0

function unsaved (pending) {
  return pending === 1 ? '1 edit not yet saved' : `${pending} edits not yet saved`
}

async function connectionChanged (doc, { state: s, code, reason, pending }) {
  if (doc !== state.document) return
  const readOnly = state.project?.role === 'viewer'
  const waiting = pending > 0 ? ` · ${unsaved(pending)}` : ''
  $('#conn').dataset.pending = String(pending || 0)
  if (s === 'connected') return setConnection('connected', readOnly ? 'Connected (read-only)' : 'Connected')
  if (s === 'connecting') return setConnection('connecting', `Connecting…${waiting}`)
  if (s === 'offline') {
    const text = navigator.onLine ? 'Offline, reconnecting…' : 'Offline: your edits are kept in this browser'
    return setConnection('offline', text + waiting)
  }
  // Closed by the server with a 44xx code: y-websocket will not retry by itself.
  if (code === 4401 && Date.now() - lastAuthRetry > 10000) {
    lastAuthRetry = Date.now()
    setConnection('connecting', 'Renewing session…')
    if (await refreshTokens()) return state.editor?.reconnect()
  }
  // Refused with a fresh cookie: this server does not take it on the
  // WebSocket, so go back to the token in the URL.
  if (code === 4401 && getSession()?.cookie) {
    dropCookie()
    return state.editor?.reconnect()
  }
  if (code === 4401) return showAuth('Your session has expired. Sign in again.')
  if (code === 4403 && await checkAccess()) return
  const why = CLOSE_MESSAGES[code] || reason || 'the server closed the connection'
  const member = state.projects.some((p) => p.id === state.project?.id)
  setConnection('closed', `Closed (${code}): ${why}`, { reconnect: code !== 4404 && member })
}

/**
 * Re-read our role in the open project (after a 4403, and every few seconds:
 * a demoted editor's connection stays open but its edits are dropped). If it
 * changed, reopen the document with the new role; if the project is gone for
 * us, keep the text on screen, read-only. Resolves true when it reopened.
 */
let accessCheck = null

function checkAccess () {
  // One check at a time: the poll and a 4403 may ask together.
  accessCheck ??= recheckAccess().finally(() => { accessCheck = null })
  return accessCheck
}

async function recheckAccess () {
  const previous = state.project
  if (!previous || !state.document || state.lostAccess) return false
  let project = null
  try {
    project = await api('GET', `/api/projects/${previous.id}`)
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error
  }
  if (previous !== state.project) return false // navigated away meanwhile
  if (project === null) {
    state.lostAccess = true
    await loadProjects()
    state.editor?.setReadOnly(true)
    $('#run').disabled = true
    show($('#project-panels'), false)
    return false
  }
  if (project.role === previous.role) return false
  state.project = project
  toast(`Your role in ${project.name} is now ${project.role}.`)
  const documentId = state.document.id
  state.document = null
  await selectDocument(documentId)
  renderDocuments()
  state.members = await renderMembers(project, getSession().user)
  return true
}

// --- live updates --------------------------------------------------------------

/** Re-read the lists after a (re)connect of the event stream: events may have been missed. */
async function refreshLists () {
  await loadProjects()
  await refreshProject()
}

/** Re-read the open project's documents and members (the project may be gone). */
async function refreshProject () {
  const project = state.project
  if (!project || state.lostAccess) return
  let documents
  try {
    documents = await api('GET', `/api/projects/${project.id}/documents`)
  } catch (error) {
    // No longer a member: checkAccess() says so and keeps the text on screen.
    if (error instanceof ApiError && error.status === 404) return checkAccess()
    throw error
  }
  if (project !== state.project) return
  state.documents = documents.items
  renderDocuments()
  state.members = await renderMembers(project, getSession().user)
}

// Several events in a row (a fork creates many documents) cause one re-read.
function debounced (fn, ms = 100) {
  let timer = null
  return () => {
    clearTimeout(timer)
    timer = setTimeout(() => fn().catch(reportError), ms)
  }
}
const projectsChanged = debounced(loadProjects)
const projectChanged = debounced(refreshProject)

/**
 * One event from /api/events. Lists are re-read rather than patched from the
 * event's data: the REST answer also carries our role and stays the one
 * source of what the lists show.
 */
function liveEvent (name, data) {
  const [kind] = name.split('.')
  if (kind === 'project') return projectEvent(name, data)
  if (kind === 'member') return memberEvent(data)
  if (kind === 'document') return documentEvent(name, data)
  if (name === 'job.started') return jobStarted(data)
}

function projectEvent (name, project) {
  projectsChanged()
  if (project.id !== state.project?.id) return
  if (name === 'project.deleted') {
    toast(`${state.project.name} was deleted.`)
    location.hash = ''
  } else {
    // A rename: the heading of the documents list shows the name too.
    if (typeof project.name === 'string') state.project = { ...state.project, name: project.name }
    projectChanged()
  }
}

function memberEvent (member) {
  // Whoever the member is, our list may change (a project shared with us, or
  // taken away); re-reading it is one cheap request.
  projectsChanged()
  if (!aboutOpenProject(member.project_id)) return
  projectChanged()
  checkAccess().catch(reportError)
}

function documentEvent (name, doc) {
  if (!aboutOpenProject(doc.project_id)) return
  projectChanged()
  if (name === 'document.deleted' && doc.id === state.document?.id) {
    toast(`${state.document.name} was deleted.`, 'error')
    location.hash = `#/projects/${state.project.id}`
  }
}

// --- running code -------------------------------------------------------------

function canRun () {
  return Boolean(state.document) && state.document.language !== 'text' &&
    state.project?.role !== 'viewer'
}

/**
 * Wait (briefly) until the server's head has the text this editor shows: the
 * job runs the text at the head when it is submitted, and the last keystrokes
 * travel over the WebSocket, not with the POST.
 */
async function settle (doc, editor) {
  const deadline = Date.now() + 1500
  while (Date.now() < deadline && editor.provider.wsconnected) {
    const { text } = await api('GET', `/api/documents/${doc.id}/content`)
    if (text === editor.text()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

function resetOutputPane () {
  resetOutput(canRun() ? 'Press Run (Ctrl+Enter) to run this document; its output appears here.'
    : state.project?.role === 'viewer' ? 'As a viewer you can follow along, but not edit or run.'
      : 'Plain text documents cannot be run.')
}

/** A run of the open document started by someone else: follow it too. */
function jobStarted (job) {
  if (job.document_id !== state.document?.id || job.id === state.job?.id) return
  const id = starterId(job)
  // Our own run is followed by run(); its event may arrive before the POST answers.
  if (id === getSession()?.user.id || (!id && state.submitting)) return
  state.job?.stop()
  state.job = followJob(job, output)
}

const output = outputView(() => ({ canRun: canRun(), members: state.members }))

async function run () {
  const { document: doc, editor } = state
  if (!canRun() || $('#run').disabled) return
  state.job?.stop()
  $('#run').disabled = true
  jobStatus('submitting')
  state.submitting = true
  try {
    await settle(doc, editor)
    if (doc !== state.document) return
    state.job = await runDocument(doc.id, output, { by: getSession().user.id })
  } catch (error) {
    output.failed(error)
  } finally {
    state.submitting = false
  }
}

function watchAccess () {
  const check = () => {
    // Offline the request can only fail; the reconnect re-checks access anyway.
    if (document.visibilityState === 'visible' && navigator.onLine) checkAccess().catch(() => {})
  }
  setInterval(check, 5000)
  window.addEventListener('focus', check)
}

function setupRun () {
  $('#run').addEventListener('click', run)
  $('#cancel-job').addEventListener('click', async () => {
    try {
      await state.job?.cancel()
    } catch (error) {
      toast(error.describe(), 'error')
    }
  })
  // Outside the editor; inside, the editor's own keymap runs it and marks the
  // event as handled.
  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented) return
    if ((event.ctrlKey || event.metaKey) && event.key === 'Enter') {
      event.preventDefault()
      run()
    }
  })
}

// --- start --------------------------------------------------------------------

async function start () {
  setupAuth()
  setupForms()
  setupRun()
  watchAccess()
  keepSessionFresh()
  onSessionChange((session) => {
    if (!session) showAuth('You are signed out.')
  })
  window.addEventListener('hashchange', () => onHashChange().catch(reportError))
  const invited = takeInviteFromUrl()
  if (!getSession()) return showAuth(invited ? INVITED_MESSAGE : undefined)
  try {
    // Checks the stored token (and refreshes it) before anything else.
    await api('GET', '/api/auth/me')
    await showApp()
  } catch (error) {
    reportError(error)
  }
}

const INVITED_MESSAGE = 'You have been invited to a project: sign in, or create an account, to join it.'

async function onHashChange () {
  if (!takeInviteFromUrl()) return route()
  if (getSession()) return joinInvitedProject()
  showAuth(INVITED_MESSAGE)
}

function reportError (error) {
  toast(error.describe ? error.describe() : String(error.message || error), 'error')
}

window.addEventListener('unhandledrejection', (event) => reportError(event.reason))
start()
