// A text/event-stream reader on top of fetch(): EventSource cannot send an
// Authorization header, and tokens do not belong in URLs that end up in logs.

/**
 * Yield `{event, data, id}` for each event of a streaming response body.
 * `event` defaults to "message"; `data` joins multi-line data with "\n".
 */
export async function * readEvents (response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  try {
    while (true) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += value.replace(/\r\n?/g, '\n')
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const parsed = parseBlock(block)
        if (parsed) yield parsed
      }
    }
  } finally {
    reader.releaseLock()
  }
}

function parseBlock (block) {
  let event = 'message'
  let id = null
  const data = []
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue // comments keep the connection alive
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'event') event = value
    else if (field === 'data') data.push(value)
    else if (field === 'id') id = value
  }
  return data.length ? { event, id, data: data.join('\n') } : null
}
