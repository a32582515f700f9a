import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

/**
 * Debian's chromium driven by playwright-core (its own browser download cannot run here). The flags keep it off the
 * network: without the background-networking ones it keeps opening connections this machine refuses.
 */
export const CHROMIUM = '/usr/bin/chromium'

/** Whether the browser tests can run; when not, says which test is skipped and how to install chromium. */
export function chromiumAvailable(what: string): boolean {
  const available = existsSync(CHROMIUM)
  if (!available) console.log(`skipping ${what}: ${CHROMIUM} not found (apt-get install -y chromium)`)
  return available
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}
