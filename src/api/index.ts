export { PeerMetrics } from './metrics.js'
export { ApiServer, HttpConfigError, MAX_BLOCKS, MAX_EVENT_STREAMS } from './server.js'
