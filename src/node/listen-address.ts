/**
 * How a node describes where it listens: the address it bound, and who can reach it. The nodes have no
 * authentication of their own, so anything but a loopback address exposes every endpoint to that network.
 */

/** `host:port`, with an IPv6 host in brackets. */
export function listenAddress(hostname: string, port: number): string {
  return `${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', ''])

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '::1' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

/** Who can reach a server bound to `hostname`, for the log line that says where a node listens. */
export function reachableFrom(hostname: string): string {
  if (isLoopback(hostname)) return 'this machine only'
  const network = WILDCARD_HOSTS.has(hostname) ? 'every network interface of this machine' : `the network of ${hostname}`
  return `${network}, without authentication (--bind 127.0.0.1 or BIND_HOST=127.0.0.1 for this machine only)`
}

/** The port is taken: a startup error the CLI prints as one line (exit 1), not a stack trace. */
export class AddressInUseError extends Error {
  constructor(readonly hostname: string, readonly port: number) {
    super(`cannot listen on ${hostname}:${port}: the port is in use (another node or program listens there); choose another with --port or PORT`)
    this.name = 'AddressInUseError'
  }
}
