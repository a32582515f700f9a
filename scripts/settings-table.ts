// Prints the Markdown table of every setting (env names, flag, default, meaning) for README.md.
import { SETTINGS, type SettingSpec } from '../src/config/settings.ts'

const rows = Object.values(SETTINGS as Record<string, SettingSpec>).map((s) =>
  `| \`${s.env[0]}\`${s.env.length > 1 ? ` (alias ${s.env.slice(1).map((e) => `\`${e}\``).join(', ')})` : ''} | \`--${s.flag}\` | ${s.defaultText ?? '–'} | ${s.help.replace(/\|/g, '\\|')} |`)
console.log(['| env (aliases) | flag | default | meaning |', '|---|---|---|---|', ...rows].join('\n'))
