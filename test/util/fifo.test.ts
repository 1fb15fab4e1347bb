import { describe, expect, it } from 'vitest'
import { Fifo } from '../../src/util/fifo.js'

describe('Fifo', () => {
  it('gives items back in order across compactions and drains', () => {
    const q = new Fifo<number>()
    let next = 0
    let expected = 0
    // Pushes three, takes two, 3,000 times: the head passes 1,024 and the array compacts many times.
    for (let round = 0; round < 3000; round++) {
      for (let i = 0; i < 3; i++) q.push(next++)
      for (let i = 0; i < 2; i++) {
        expect(q.peek()).toBe(expected)
        expect(q.shift()).toBe(expected++)
      }
      expect(q.length).toBe(next - expected)
    }
    while (q.length > 0) expect(q.shift()).toBe(expected++)
    expect(expected).toBe(next)
    expect(q.shift()).toBeUndefined()
    expect(q.peek()).toBeUndefined()
    q.push(7)
    expect(q.length).toBe(1)
    expect(q.shift()).toBe(7)
  })
})
