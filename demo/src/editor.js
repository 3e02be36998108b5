// The shared editor: a Y.Doc synced over y-websocket, bound to CodeMirror by
// y-codemirror.next, with remote cursors labelled by the server-stamped names.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { EditorView } from 'codemirror'
import { Compartment, EditorState, Prec } from '@codemirror/state'
import {
  crosshairCursor, drawSelection, dropCursor, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, keymap, lineNumbers, rectangularSelection
} from '@codemirror/view'
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import {
  bracketMatching, defaultHighlightStyle, foldGutter, foldKeymap, indentOnInput, syntaxHighlighting
} from '@codemirror/language'
import { highlightSelectionMatches, searchKeymap } from '@codemirror/search'
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from '@codemirror/autocomplete'
import { python } from '@codemirror/lang-python'
import { javascript } from '@codemirror/lang-javascript'
import { trackConnection } from './connection.js'
import { openLocalStore } from './local-store.js'
import { getSession, onSessionChange } from './session.js'

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#0f9d9a', '#f032e6', '#9a6324']

/** A stable color per user, so a person keeps their color across reloads. */
export function colorFor (userId) {
  let hash = 0
  for (const char of userId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0
  return PALETTE[hash % PALETTE.length]
}

// CodeMirror writes its styles into a <style> element; the page's CSP admits
// it by this per-response nonce, which the server puts in a meta tag.
const styleNonce = document.querySelector('meta[name="csp-nonce"]')?.content || ''
const cspNonce = /^[\w+/=-]+$/.test(styleNonce) ? [EditorView.cspNonce.of(styleNonce)] : []

function language (name) {
  if (name === 'python') return python()
  if (name === 'javascript') return javascript()
  return []
}

const theme = EditorView.theme({
  '&': { height: '100%', fontSize: '14px' },
  '.cm-scroller': { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace' },
  // y-codemirror.next shows a cursor's name only on hover; collaborators
  // should see who is where at a glance.
  '.cm-ySelectionInfo': {
    opacity: '1', top: '-1.2em', padding: '1px 5px', borderRadius: '3px 3px 3px 0',
    fontFamily: 'system-ui, sans-serif', fontSize: '11px', fontWeight: '600', lineHeight: '1.2'
  },
  '.cm-ySelectionCaretDot': { display: 'none' }
})

/** The WebSocket query: none when the session cookie authenticates, else the token. */
function socketParams (session) {
  return session.cookie ? {} : { token: session.accessToken }
}

/**
 * Open a document in `parent`.
 *
 * `on.status({state, pending, code?, reason?})` reports the connection:
 * "connecting", "connected", "offline" or "closed", and how many local edits
 * the server has not received yet; `on.peers([{name, color}])` the other
 * people in the document; `on.run()` is called for Ctrl+Enter (Cmd+Enter).
 * Returns `{view, provider, text(), setReadOnly(bool), reconnect(), destroy()}`.
 */
export function openEditor (parent, { document: doc, readOnly, on }) {
  const session = getSession()
  let destroyed = false
  // Destroying the provider reports a last "disconnected"; nobody is listening then.
  const report = (s) => { if (!destroyed) on.status(s) }
  const ydoc = new Y.Doc()
  const ytext = ydoc.getText('content')
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  const provider = new WebsocketProvider(`${scheme}://${location.host}/ws`, doc.id, ydoc, {
    params: socketParams(session),
    // Tabs of one browser may belong to different people (sessionStorage), so
    // every edit goes through the server, which checks each one's role.
    disableBc: true,
    // Connect once the edits kept in this browser are loaded (or offline, never).
    connect: false
  })
  const store = openLocalStore(ydoc, session.user.id, doc.id, readOnly)
  const color = colorFor(session.user.id)
  provider.awareness.setLocalStateField('user', {
    name: session.user.display_name, color, colorLight: `${color}33`
  })

  // Reconnects (after 1012, a network blip) use whatever token is current.
  const unsubscribe = onSessionChange((s) => { if (s) provider.params = socketParams(s) })
  const connection = trackConnection({
    provider,
    ydoc,
    key: `${session.user.id}.${doc.id}`,
    remoteOrigins: [provider, store.origin],
    report
  })
  store.ready.then(() => { if (!destroyed) connection.connect() })

  const reportPeers = () => {
    const peers = []
    provider.awareness.getStates().forEach((state, clientId) => {
      if (clientId !== ydoc.clientID && state.user) {
        peers.push({ name: state.user.name || 'Anonymous', color: state.user.color || '#888' })
      }
    })
    on.peers(peers)
  }
  provider.awareness.on('change', reportPeers)

  const editable = new Compartment()
  const editableState = (ro) => [EditorState.readOnly.of(ro), EditorView.editable.of(!ro)]
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        lineNumbers(), highlightActiveLineGutter(), highlightSpecialChars(), foldGutter(),
        drawSelection(), dropCursor(), EditorState.allowMultipleSelections.of(true),
        indentOnInput(), syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        bracketMatching(), closeBrackets(), autocompletion(), rectangularSelection(),
        crosshairCursor(), highlightActiveLine(), highlightSelectionMatches(),
        // Above CodeMirror's own Mod-Enter (insert a blank line), which would
        // otherwise add a line to the shared text on every run.
        Prec.highest(keymap.of([{ key: 'Mod-Enter', run: () => { on.run(); return true } }])),
        keymap.of([
          ...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...foldKeymap,
          ...completionKeymap, ...yUndoManagerKeymap, indentWithTab
        ]),
        language(doc.language),
        yCollab(ytext, provider.awareness),
        editable.of(editableState(readOnly)),
        cspNonce,
        theme
      ]
    })
  })

  return {
    view,
    provider,
    text: () => ytext.toString(),
    setReadOnly (ro) {
      view.dispatch({ effects: editable.reconfigure(editableState(ro)) })
    },
    reconnect () {
      provider.params = socketParams(getSession())
      connection.connect()
    },
    destroy () {
      destroyed = true
      unsubscribe()
      connection.destroy()
      store.destroy()
      provider.awareness.off('change', reportPeers)
      provider.destroy()
      view.destroy()
      ydoc.destroy()
    }
  }
}
