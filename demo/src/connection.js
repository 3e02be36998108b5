// The connection state of one open document, as a person should see it.
//
// y-websocket only notices a dead socket after 30 s without a message, so the
// browser's own online/offline events decide first: offline, the provider is
// disconnected at once (and reconnected when the network is back). Local edits
// made while the server cannot receive them are counted, and the count is kept
// in localStorage beside the edits themselves (which y-indexeddb keeps), so a
// reopened tab still knows how many are waiting.

const PENDING_PREFIX = 'collab.pending.'

function loadPending (key) {
  const value = Number(localStorage.getItem(PENDING_PREFIX + key))
  return Number.isInteger(value) && value > 0 ? value : 0
}

function savePending (key, count) {
  if (count > 0) localStorage.setItem(PENDING_PREFIX + key, String(count))
  else localStorage.removeItem(PENDING_PREFIX + key)
}

/**
 * Follow `provider` and the browser's network state and report
 * `{state, pending, code?, reason?}` to `report` on every change; `state` is
 * "connecting", "connected", "offline" or "closed" (by the server, with `code`).
 * Local updates are those of `ydoc` whose origin is not in `remoteOrigins`.
 * `connect()` starts or resumes the connection unless the browser is offline.
 * Returns `{connect(), current(), destroy()}`.
 */
export function trackConnection ({ provider, ydoc, key, remoteOrigins, report }) {
  let online = navigator.onLine
  let pending = loadPending(key)
  let closed = null
  let wanted = false

  const current = () => {
    if (closed) return { state: 'closed', pending, ...closed }
    if (!online) return { state: 'offline', pending }
    if (provider.wsconnected && provider.synced) return { state: 'connected', pending }
    if (provider.wsconnected || provider.wsconnecting) return { state: 'connecting', pending }
    return { state: wanted ? 'offline' : 'connecting', pending }
  }
  const emit = () => report(current())

  const connect = () => {
    wanted = true
    closed = null
    if (online) provider.connect()
    emit()
  }
  const goOffline = () => {
    online = false
    provider.disconnect()
    emit()
  }
  const goOnline = () => {
    online = true
    if (wanted && !closed) provider.connect()
    emit()
  }
  const onUpdate = (_update, origin) => {
    if (remoteOrigins.includes(origin) || current().state === 'connected') return
    pending += 1
    savePending(key, pending)
    emit()
  }
  const onSync = (isSynced) => {
    // The first sync after a reconnect carries every update the server lacks.
    if (isSynced) {
      pending = 0
      savePending(key, 0)
    }
    emit()
  }
  const onClosed = ({ code, reason }) => {
    closed = { code, reason }
    emit()
  }

  provider.on('status', emit)
  provider.on('sync', onSync)
  provider.on('closed', onClosed)
  ydoc.on('update', onUpdate)
  window.addEventListener('offline', goOffline)
  window.addEventListener('online', goOnline)
  return {
    connect,
    current,
    destroy () {
      window.removeEventListener('offline', goOffline)
      window.removeEventListener('online', goOnline)
      ydoc.off('update', onUpdate)
      provider.off('status', emit)
      provider.off('sync', onSync)
      provider.off('closed', onClosed)
    }
  }
}
