// Build the demo into ../collab/static/demo: app.js (one minified ES module),
// app.css, index.html (asset URLs carry a content hash, so browsers never mix
// an old script with a new page) and LICENSES.txt for the bundled packages.
// app.js.gz and app.css.gz sit beside them: aiohttp's static files answer with
// the .gz when the browser accepts gzip, a third of the size on the wire.
//
//   node build.mjs           write the files
//   node build.mjs --check   exit 1 if the committed files differ from a fresh build

import { createHash } from 'node:crypto'
import { gunzipSync, gzipSync } from 'node:zlib'
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const outdir = join(here, '..', 'collab', 'static', 'demo')
const check = process.argv.includes('--check')

const common = {
  bundle: true,
  minify: true,
  write: false,
  logLevel: 'warning',
  legalComments: 'none', // collected into LICENSES.txt instead
  target: ['es2022', 'chrome111', 'firefox113', 'safari16.4']
}

const js = await esbuild.build({
  ...common,
  entryPoints: [join(here, 'src', 'main.js')],
  format: 'esm',
  metafile: true,
  outfile: join(outdir, 'app.js')
})
const css = await esbuild.build({
  ...common,
  entryPoints: [join(here, 'src', 'app.css')],
  outfile: join(outdir, 'app.css')
})

const version = (text) => createHash('sha256').update(text).digest('hex').slice(0, 12)
const appJs = js.outputFiles[0].text
const appCss = css.outputFiles[0].text
const indexHtml = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('%JS_VERSION%', version(appJs))
  .replace('%CSS_VERSION%', version(appCss))

const files = {
  'index.html': indexHtml,
  'favicon.svg': readFileSync(join(here, 'src', 'favicon.svg'), 'utf8'),
  'app.js': appJs,
  'app.css': appCss,
  'LICENSES.txt': licenses(js.metafile)
}

/** The license text of every npm package that ended up in the bundle. */
function licenses (metafile) {
  const roots = new Set()
  for (const input of Object.keys(metafile.inputs)) {
    const match = input.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//)
    if (match) roots.add(match[1])
  }
  const sections = [...roots].sort().map((root) => {
    const dir = join(here, root)
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    const file = readdirSync(dir).find((name) => /^(licen[cs]e|copying)/i.test(name))
    const text = file ? readFileSync(join(dir, file), 'utf8').trim() : `License: ${pkg.license}`
    return `${pkg.name}@${pkg.version} (${pkg.license})\n\n${text}\n`
  })
  return 'Third-party packages bundled into app.js\n\n' + sections.join('\n' + '-'.repeat(72) + '\n\n')
}

const compressed = ['app.js', 'app.css']

if (check) {
  // The .gz files are compared by content: zlib versions may compress differently.
  const differs = (path, text, gz) => {
    if (!existsSync(path)) return true
    const bytes = readFileSync(path)
    return (gz ? gunzipSync(bytes) : bytes).toString('utf8') !== text
  }
  const stale = Object.entries(files).flatMap(([name, text]) => [
    differs(join(outdir, name), text, false) && name,
    compressed.includes(name) && differs(join(outdir, `${name}.gz`), text, true) && `${name}.gz`
  ]).filter(Boolean).map((name) => [name])
  for (const [name] of stale) console.error(`out of date: ${relative(process.cwd(), join(outdir, name))}`)
  if (stale.length) {
    console.error('run: cd demo && npm ci && node build.mjs')
    process.exit(1)
  }
  console.log('the committed bundle matches the sources')
} else {
  mkdirSync(outdir, { recursive: true })
  const write = (name, data) => {
    writeFileSync(join(outdir, name), data)
    console.log(`${relative(process.cwd(), join(outdir, name))}  ${(Buffer.byteLength(data) / 1024).toFixed(1)} KiB`)
  }
  for (const [name, text] of Object.entries(files)) {
    write(name, text)
    if (compressed.includes(name)) write(`${name}.gz`, gzipSync(text, { level: 9 }))
  }
}
