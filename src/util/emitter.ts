import { EventEmitter } from 'node:events'

/** A typed event emitter: one event map per module, listeners are plain subscribers. */
export class TypedEmitter<Events extends { [K in keyof Events]: unknown }> {
  private readonly emitter = new EventEmitter()

  constructor() {
    // Subscribers are the CLI, the HTTP API, logs and tests; more than ten is normal.
    this.emitter.setMaxListeners(100)
  }

  on<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): () => void {
    this.emitter.on(event, listener)
    return () => this.emitter.off(event, listener)
  }

  once<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): void {
    this.emitter.once(event, listener)
  }

  emit<K extends keyof Events & string>(event: K, payload: Events[K]): void {
    this.emitter.emit(event, payload)
  }
}
