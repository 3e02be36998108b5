#!/usr/bin/env node
// Rebuilds a document from its event log with the real JavaScript Yjs.
//
// stdin:  {"updates": ["<base64 Yjs v1 update>", ...]}
// stdout: {"text": "<getText('content')>", "state": "<base64 encodeStateAsUpdate>"}
//
// The updates are applied one by one, in the given order, to a fresh Y.Doc: that is what
// a server replaying its log does, and Yjs (unlike pycrdt, which integrates an update whose predecessor is missing) keeps an
// update whose dependencies are missing pending until they arrive, so comparing both
// results catches ordering bugs. On bad input it prints {"error": ...} and exits with 1.

import * as Y from 'yjs'

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) {
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

const replay = (updates) => {
  const ydoc = new Y.Doc()
  for (const update of updates) {
    Y.applyUpdate(ydoc, new Uint8Array(Buffer.from(update, 'base64')))
  }
  return {
    text: ydoc.getText('content').toString(),
    state: Buffer.from(Y.encodeStateAsUpdate(ydoc)).toString('base64'),
    // Non-empty when some update still waits for a missing predecessor.
    pending: ydoc.store.pendingStructs !== null || ydoc.store.pendingDs !== null
  }
}

const main = async () => {
  try {
    const input = JSON.parse(await readStdin())
    if (!Array.isArray(input.updates) || !input.updates.every((u) => typeof u === 'string')) {
      throw new Error('expected {"updates": [base64 strings]}')
    }
    process.stdout.write(JSON.stringify(replay(input.updates)) + '\n')
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: String(err && err.message) }) + '\n')
    process.exitCode = 1
  }
}

main()
