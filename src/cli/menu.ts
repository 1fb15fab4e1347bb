import { styleText } from 'node:util'
import {
  createPrompt,
  isDownKey,
  isEnterKey,
  isNumberKey,
  isUpKey,
  makeTheme,
  type Theme,
  useKeypress,
  usePrefix,
  useState,
} from '@inquirer/core'

export interface MenuChoice<V> {
  readonly name: string
  readonly value: V
}

export interface MenuConfig<V> {
  readonly message: string
  readonly choices: readonly MenuChoice<V>[]
  /** The highlighted choice when drawn: the one the user had reached before a redraw. */
  readonly active: number
  /** Told of every move, so the next draw (after an event aborts this one) starts there. */
  readonly onMove: (index: number) => void
}

/**
 * A select prompt that starts on a given choice. The menu is redrawn whenever an event is printed
 * above it; inquirer's own select would start at the top each time, so Down-Down-Enter raced the
 * network. (Up/Down wrap around; 1-9 jump to a choice; Enter picks.)
 */
export const menu = createPrompt(<V>(config: MenuConfig<V>, done: (value: V) => void): string => {
  const theme = makeTheme<Theme>({})
  const [status, setStatus] = useState<'idle' | 'done'>('idle')
  const n = config.choices.length
  const [active, setActive] = useState(Math.min(Math.max(0, config.active), n - 1))
  const prefix = usePrefix({ status, theme })
  const move = (i: number) => {
    setActive(i)
    config.onMove(i)
  }
  useKeypress((key) => {
    if (isEnterKey(key)) {
      setStatus('done')
      done(config.choices[active].value)
    } else if (isUpKey(key)) move((active + n - 1) % n)
    else if (isDownKey(key)) move((active + 1) % n)
    else if (isNumberKey(key)) {
      const i = Number(key.name) - 1
      if (i >= 0 && i < n) move(i)
    }
  })
  const message = theme.style.message(config.message, status)
  if (status === 'done') return `${prefix} ${message} ${theme.style.answer(config.choices[active].name)}`
  const lines = config.choices.map((c, i) => (i === active ? styleText('cyan', `❯ ${c.name}`) : `  ${c.name}`))
  return `${prefix} ${message}\n${lines.join('\n')}`
})
