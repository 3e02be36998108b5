#!/usr/bin/env node
// Hocuspocus as the benchmarks run it: `@hocuspocus/server` with no extensions, so documents
// live in memory only and nothing is saved (as the stock y-websocket server does).
//
// Usage: node hocuspocus-server.mjs; listens on a free port of 127.0.0.1 and prints
// "listening on <port>" once it accepts connections. SIGTERM stops it.

import { Server } from '@hocuspocus/server'

const server = new Server({
  address: '127.0.0.1',
  // Port 0: the system picks a free port, so two runs never race for one.
  port: 0,
  quiet: true
})

await server.listen()
console.log(`listening on ${server.address.port}`)
