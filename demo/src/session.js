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

/** The current session `{user, accessToken, refreshToken}`, or null. */
export function getSession () {
  return current
}

/** Store the answer of register, login or refresh. */
export function saveTokens ({ user, access_token: accessToken, refresh_token: refreshToken }) {
  current = { user: user || current?.user, accessToken, refreshToken }
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
