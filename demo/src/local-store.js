// Edits kept in the browser (IndexedDB, through y-indexeddb), so that closing
// or reloading a tab while the server cannot be reached loses nothing: when the
// document is opened again, the kept edits are loaded into the Y.Doc first and
// the provider's sync then sends the server whatever it lacks.
//
// One database per person and document: people who share a browser never see
// each other's kept edits. A viewer keeps nothing, and opening a document
// read-only drops what an earlier editor session kept: the server refuses a
// viewer's edits, so keeping them would only bring them back on every reload.

import { IndexeddbPersistence, clearDocument } from 'y-indexeddb'

// Opening the database normally takes milliseconds; never wait longer than
// this before connecting (a browser may refuse IndexedDB, e.g. in private mode).
const LOAD_TIMEOUT_MS = 2000

/** The IndexedDB database name for `userId`'s copy of `documentId`. */
export function storeName (userId, documentId) {
  return `collab.${userId}.${documentId}`
}

/**
 * Keep `ydoc` in IndexedDB. Returns `{origin, ready, destroy()}`: `origin` is
 * the transaction origin of updates loaded from the store, `ready` resolves
 * once they are loaded (or after a timeout, or at once when read-only).
 */
export function openLocalStore (ydoc, userId, documentId, readOnly) {
  const name = storeName(userId, documentId)
  if (readOnly || typeof indexedDB === 'undefined') {
    if (readOnly && typeof indexedDB !== 'undefined') clearDocument(name).catch(() => {})
    return { origin: null, ready: Promise.resolve(), destroy () {} }
  }
  let persistence = null
  try {
    persistence = new IndexeddbPersistence(name, ydoc)
  } catch {
    return { origin: null, ready: Promise.resolve(), destroy () {} }
  }
  const timeout = new Promise((resolve) => setTimeout(resolve, LOAD_TIMEOUT_MS))
  return {
    origin: persistence,
    ready: Promise.race([persistence.whenSynced, timeout]),
    destroy () {
      persistence.destroy().catch(() => {})
    }
  }
}
