// pos-peer dashboard: plain browser JavaScript, no dependencies, no network access beyond this peer.
const $ = (id) => document.getElementById(id)
const MAX_BLOCKS = 50
const short = (id) => (id && id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : (id ?? '-'))
const pct = (x) => `${(x * 100).toFixed(1)}%`
const mine = new Set() // ids of readings submitted from this page
let status = null
let finalHeight = 0

async function getJson(path) {
  const res = await fetch(path)
  if (!res.ok) throw new Error(`${path}: ${res.status}`)
  return res.json()
}

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v
    else node.setAttribute(k, v)
  }
  for (const c of [].concat(children)) node.append(c instanceof Node ? c : document.createTextNode(String(c)))
  return node
}

// --- status -----------------------------------------------------------------------------------

async function refreshStatus() {
  applyStatus(await getJson('/api/status'))
}

function applyStatus(s) {
  status = s
  $('network').textContent = `${status.network.name} ${status.network.id.slice(0, 12)}`
  $('peer-id').textContent = short(status.peerId)
  $('peer-id').title = status.peerId
  $('slot').textContent = status.slot
  $('head').textContent = `#${status.head.height}`
  $('final').textContent = `#${status.finalized.height}`
  $('peer-count').textContent = status.peers
  $('stake').textContent = status.stake
  setFinal(status.finalized.height)
  const bpm = $('bpm')
  bpm.min = status.network.minBpm
  bpm.max = status.network.maxBpm
  bpm.placeholder = `${status.network.minBpm} to ${status.network.maxBpm}`
}

// --- the live chain -----------------------------------------------------------------------------

function blockItem(b) {
  const readings = b.readings.length
    ? b.readings.map((r) =>
        el('span', { class: mine.has(r.id) ? 'bpm mine' : 'bpm', 'data-reading': r.id, title: short(r.author) }, r.bpm),
      )
    : [el('span', { class: 'empty' }, 'no readings')]
  return el('li', { 'data-height': b.height, 'data-hash': b.hash, class: b.final ? 'final' : '' }, [
    el('span', { class: 'height' }, `#${b.height}`),
    el('span', { class: 'proposer', title: b.proposer }, `won by ${short(b.proposer)}`),
    el('span', { class: 'badge' }, b.final ? 'final' : 'pending'),
    el('div', { class: 'readings' }, readings),
  ])
}

function showBlock(b) {
  const list = $('blocks')
  // A block at a height we show replaces it (a reorg); the list stays ordered, newest first.
  for (const li of [...list.children]) if (Number(li.dataset.height) >= b.height) li.remove()
  b.final = b.final || b.height <= finalHeight
  list.prepend(blockItem(b))
  while (list.children.length > MAX_BLOCKS) list.lastElementChild.remove()
  $('head').textContent = `#${b.height}`
  for (const r of b.readings) if (mine.has(r.id)) say(`your reading ${r.bpm} is in block #${b.height}`, 'ok')
}

function setFinal(height) {
  finalHeight = Math.max(finalHeight, height)
  $('final').textContent = `#${finalHeight}`
  for (const li of $('blocks').children) {
    if (Number(li.dataset.height) <= finalHeight && !li.classList.contains('final')) {
      li.classList.add('final')
      li.querySelector('.badge').textContent = 'final'
    }
  }
}

async function loadBlocks() {
  const { blocks } = await getJson(`/api/blocks?limit=${MAX_BLOCKS}`)
  showBlocks(blocks)
}

/** Newest first, as /api/blocks gives them. */
function showBlocks(blocks) {
  $('blocks').replaceChildren()
  for (const b of [...blocks].reverse()) showBlock(b)
}

/** The state the server put in the page, so the first paint shows the chain. */
function initialState() {
  try {
    const v = JSON.parse($('initial').textContent)
    return v.status ? v : null
  } catch {
    return null
  }
}

// --- validators chart ----------------------------------------------------------------------------

let chartTimer = null
function scheduleChart() {
  if (chartTimer === null) chartTimer = setTimeout(drawChart, 1000)
}

async function drawChart() {
  chartTimer = null
  const { validators } = await getJson('/api/validators')
  const rows = validators.filter((v) => v.active || v.won > 0 || v.slashed || v.ejected)
  const svg = $('shares')
  const rowH = 34
  const labelW = 110
  const width = 360
  svg.setAttribute('viewBox', `0 0 ${width} ${Math.max(rowH, rows.length * rowH)}`)
  const ns = 'http://www.w3.org/2000/svg'
  const shape = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag)
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v)
    if (text !== undefined) n.textContent = text
    return n
  }
  // Hover text: the numbers behind a row (stake waiting to count, the account's tokens).
  const withTitle = (node, text) => {
    node.appendChild(shape('title', {}, text))
    return node
  }
  const barW = width - labelW - 50
  svg.replaceChildren(
    ...rows.flatMap((v, i) => {
      const y = i * rowH
      return [
        shape('text', { x: 0, y: y + 13 }, short(v.address)),
        withTitle(
          shape(
            'text',
            { x: 0, y: y + 27 },
            v.slashed
              ? 'slashed'
              : v.ejected
                ? 'ejected (inactive)'
                : `stake ${v.stake}${v.waiting > 0 ? ` +${v.waiting}` : ''}`,
          ),
          `stake ${v.stake} counting${v.waiting > 0 ? `, ${v.waiting} waiting to count` : ''}; tokens: ${v.free} free, ${v.bonded} bonded, ${v.unbonding} unbonding`,
        ),
        shape('rect', { class: 'stake', x: labelW, y: y + 4, height: 11, width: Math.max(1, v.stakeShare * barW) }),
        shape('rect', { class: 'wins', x: labelW, y: y + 17, height: 11, width: Math.max(1, v.winShare * barW) }),
        shape('text', { x: labelW + v.stakeShare * barW + 4, y: y + 13 }, pct(v.stakeShare)),
        shape('text', { x: labelW + v.winShare * barW + 4, y: y + 27 }, `${pct(v.winShare)} (${v.won})`),
      ]
    }),
  )
}

// --- peers ------------------------------------------------------------------------------------

async function drawPeers() {
  const { peers } = await getJson('/api/peers')
  $('peer-count').textContent = peers.length
  $('peers').replaceChildren(
    ...(peers.length
      ? peers.map((p) => el('li', { title: p.addr }, [short(p.peerId), ' ', el('span', { class: 'dir' }, p.addr)]))
      : [el('li', { class: 'empty' }, 'no peers connected')]),
  )
}

// --- the reading form -------------------------------------------------------------------------

function say(text, kind = '') {
  const m = $('bpm-message')
  m.textContent = text
  m.className = `message ${kind}`
}

function checkBpm(value) {
  const min = status?.network.minBpm ?? 20
  const max = status?.network.maxBpm ?? 300
  if (value.trim() === '') return 'enter a heart rate'
  if (!/^-?\d+$/.test(value.trim())) return 'whole numbers only'
  const n = Number(value)
  if (n < min || n > max) return `must be between ${min} and ${max}`
  return null
}

$('bpm').addEventListener('input', (e) => {
  const problem = e.target.value === '' ? null : checkBpm(e.target.value)
  e.target.setAttribute('aria-invalid', problem ? 'true' : 'false')
  say(problem ?? '', problem ? 'error' : '')
})

$('reading-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const input = $('bpm')
  const problem = checkBpm(input.value)
  if (problem) {
    input.setAttribute('aria-invalid', 'true')
    say(problem, 'error')
    return
  }
  const button = e.target.querySelector('button')
  button.disabled = true
  try {
    const res = await fetch('/api/readings', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ bpm: Number(input.value) }),
    })
    const body = await res.json()
    if (res.status !== 202) {
      say(body.message ?? `error ${res.status}`, 'error')
      return
    }
    mine.add(body.id)
    say(`sent ${body.bpm}: waiting for a block…`, 'ok')
    input.value = ''
  } catch (err) {
    say(`could not reach the peer: ${err.message}`, 'error')
  } finally {
    button.disabled = false
  }
})

// --- live events ------------------------------------------------------------------------------

function connect() {
  const events = new EventSource('/api/events')
  events.onopen = () => {
    $('live').textContent = 'live'
    $('live').className = 'on'
    loadBlocks().catch(() => {})
  }
  events.onerror = () => {
    $('live').textContent = 'reconnecting'
    $('live').className = 'off'
  }
  events.addEventListener('block', (e) => {
    showBlock(JSON.parse(e.data))
    scheduleChart()
  })
  events.addEventListener('finalized', (e) => setFinal(JSON.parse(e.data).height))
  for (const name of ['peer:connect', 'peer:disconnect']) events.addEventListener(name, () => drawPeers())
  events.addEventListener('slashed', () => scheduleChart())
}

async function start() {
  const initial = initialState()
  if (initial !== null) {
    applyStatus(initial.status)
    showBlocks(initial.blocks)
  } else await refreshStatus()
  await Promise.all([initial === null ? loadBlocks() : null, drawChart(), drawPeers()])
  connect()
  setInterval(() => refreshStatus().catch(() => {}), 2000)
  setInterval(() => drawPeers().catch(() => {}), 10000)
}

start().catch((err) => say(`could not load: ${err.message}`, 'error'))
