// JSON over fetch with the bearer token, one transparent refresh on 401, and
// the server's error envelope turned into an ApiError.

import { clearSession, getSession, onSessionChange, saveTokens } from './session.js'

export class ApiError extends Error {
  constructor (status, code, message, details = {}) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
  }

  /** The message plus each field's complaints, for showing to a person. */
  describe () {
    const fields = Object.entries(this.details || {})
      .filter(([, problems]) => Array.isArray(problems))
      .map(([field, problems]) => `${field.replace('_', ' ')}: ${problems.join(' ')}`)
    const message = this.message.charAt(0).toUpperCase() + this.message.slice(1)
    return fields.length ? `${message} (${fields.join('; ')})` : message
  }
}

let refreshing = null

/**
 * Trade the refresh token for a new pair. Concurrent callers share one request,
 * because refresh tokens rotate and a second use would revoke the family.
 * Resolves true when there is a fresh access token.
 */
export function refreshTokens () {
  if (!refreshing) {
    refreshing = doRefresh().finally(() => { refreshing = null })
  }
  return refreshing
}

async function doRefresh () {
  const session = getSession()
  if (!session) return false
  try {
    const response = await fetch('/api/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: session.refreshToken })
    })
    if (response.ok) {
      saveTokens(await response.json())
      return true
    }
    if (response.status === 401) clearSession()
  } catch {
    // Network trouble: keep the session, the caller reports the failure.
  }
  return false
}

// Refresh when four fifths of the access token's life are gone: the WebSocket
// reconnects with whatever is current (token or cookie), and a stale one would
// be refused.
const REFRESH_AT = 0.8
const MIN_REFRESH_DELAY_MS = 5000
let refreshTimer = null

function refreshWhenOnline () {
  if (navigator.onLine) refreshTokens()
  else window.addEventListener('online', () => refreshTokens(), { once: true })
}

/** Keep the session fresh: refresh the tokens (and cookie) before they expire. */
export function keepSessionFresh () {
  const schedule = (session) => {
    clearTimeout(refreshTimer)
    if (!session?.expiresAt) return
    const lifetime = session.expiresAt - Date.now()
    const delay = Math.max(MIN_REFRESH_DELAY_MS, lifetime * REFRESH_AT)
    refreshTimer = setTimeout(refreshWhenOnline, delay)
  }
  schedule(getSession())
  return onSessionChange(schedule)
}

/** fetch() with the bearer header, refreshing the token once if it has expired. */
export async function authorizedFetch (path, init = {}) {
  const send = () => {
    const headers = new Headers(init.headers)
    const session = getSession()
    if (session) headers.set('Authorization', `Bearer ${session.accessToken}`)
    return fetch(path, { ...init, headers })
  }
  let response = await send()
  if (response.status === 401 && getSession() && await refreshTokens()) {
    response = await send()
  }
  return response
}

async function toError (response) {
  try {
    const { error } = await response.json()
    return new ApiError(response.status, error.code, error.message, error.details)
  } catch {
    return new ApiError(response.status, 'http_error', `${response.status} ${response.statusText}`)
  }
}

/**
 * Call the REST API. `body` is sent as JSON; resolves to the parsed answer
 * (null for 204) or rejects with an ApiError.
 */
export async function api (method, path, body, { auth = true } = {}) {
  const init = { method, headers: {} }
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  const response = auth ? await authorizedFetch(path, init) : await fetch(path, init)
  if (!response.ok) throw await toError(response)
  return response.status === 204 ? null : response.json()
}
