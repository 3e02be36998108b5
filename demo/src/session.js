// The signed-in account and its tokens, kept in sessionStorage: they live as
// long as the tab, and two tabs can be two different people.

const KEY = 'collab.session'
const listeners = new Set()

let current = load()

function load () {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY) || 'null')
    return saved && saved.accessToken && saved.refreshToken && saved.user ? saved : null
  } catch {
    return null
  }
}

/**
 * The current session `{user, accessToken, refreshToken, expiresAt, cookie}`,
 * or null. `expiresAt` is when the access token expires (ms since the epoch);
 * `cookie` is true when the server also keeps the session in an HttpOnly
 * cookie, which the WebSocket and EventSource then rely on instead of a token
 * in the URL.
 */
export function getSession () {
  return current
}

/** Store the answer of register, login or refresh. */
export function saveTokens (answer) {
  const { user, access_token: accessToken, refresh_token: refreshToken, expires_in: expiresIn } = answer
  const expiresAt = Number.isFinite(expiresIn) ? Date.now() + expiresIn * 1000 : null
  current = { user: user || current?.user, accessToken, refreshToken, expiresAt, cookie: setsCookie(answer) }
  sessionStorage.setItem(KEY, JSON.stringify(current))
  listeners.forEach((fn) => fn(current))
}

/**
 * Whether the server says it set the session cookie: a `session_cookie: true`
 * (or `cookie: true`) in the answer. Without it the page authenticates its
 * WebSocket with `?token=`, which works with every server version.
 */
function setsCookie (answer) {
  return answer.session_cookie === true || answer.cookie === true
}

/** Stop relying on the cookie (the server refused a connection that used it). */
export function dropCookie () {
  if (!current?.cookie) return
  current = { ...current, cookie: false }
  sessionStorage.setItem(KEY, JSON.stringify(current))
  listeners.forEach((fn) => fn(current))
}

export function clearSession () {
  current = null
  sessionStorage.removeItem(KEY)
  listeners.forEach((fn) => fn(null))
}

/** Call `fn(session | null)` whenever the tokens change; returns an unsubscribe function. */
export function onSessionChange (fn) {
  listeners.add(fn)
  return () => listeners.delete(fn)
}
