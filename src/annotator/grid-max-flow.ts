/**
 * Minimum s–t cut on an 8-connected pixel grid with the Boykov–Kolmogorov augmenting-path algorithm
 * (search trees grown from both terminals and reused between augmentations). That algorithm is the
 * one that is fast on the short, wide graphs of image segmentation; written here on typed arrays with
 * implicit grid neighbours, so a 250×250 grid has no per-arc objects at all. Pure.
 */

/** Neighbour directions; the reverse of direction k is (k + 4) % 8. */
export const GRID_DIRECTIONS: readonly (readonly [number, number])[] = [
  [1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1],
]
const DIRECTIONS = 8
const reverse = (k: number) => (k + 4) & 7

const FREE = 0
const SOURCE_TREE = 1
const SINK_TREE = 2
const NO_PARENT = -1
const TERMINAL = 8
const ORPHAN = 9
const INFINITE_DISTANCE = 0x3fffffff

export class GridGraph {
  readonly size: number
  /** residual capacity to the terminals: > 0 from the source, < 0 to the sink */
  private readonly terminal: Float64Array
  /** residual capacity of the arc from node p towards its neighbour in direction k, at p * 8 + k */
  private readonly capacity: Float64Array
  private readonly offsets: Int32Array
  /** bit k set when node p has a neighbour in direction k (not across the grid border) */
  private readonly neighbours: Uint8Array
  private readonly tree: Uint8Array
  private readonly parent: Int8Array
  private readonly timestamp: Int32Array
  private readonly distance: Int32Array
  private readonly activeFlag: Uint8Array
  private readonly activeQueue: Int32Array
  private queueHead = 0
  private queueLength = 0
  /** orphans waiting for adoption, FIFO; a node is queued at most once at a time */
  private readonly orphanQueue: Int32Array
  private orphanHead = 0
  private orphanLength = 0
  private time = 0
  private flow = 0
  private solved = false

  constructor(readonly width: number, readonly height: number) {
    if (!(width > 0 && height > 0)) throw new Error(`grid must be at least 1×1, got ${width}×${height}`)
    this.size = width * height
    this.terminal = new Float64Array(this.size)
    this.capacity = new Float64Array(this.size * DIRECTIONS)
    this.offsets = Int32Array.from(GRID_DIRECTIONS, ([dx, dy]) => dy * width + dx)
    this.neighbours = new Uint8Array(this.size)
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let bits = 0
        for (let k = 0; k < DIRECTIONS; k++) {
          const [dx, dy] = GRID_DIRECTIONS[k]!
          const nx = x + dx
          const ny = y + dy
          if (nx >= 0 && ny >= 0 && nx < width && ny < height) bits |= 1 << k
        }
        this.neighbours[y * width + x] = bits
      }
    }
    this.tree = new Uint8Array(this.size)
    this.parent = new Int8Array(this.size).fill(NO_PARENT)
    this.timestamp = new Int32Array(this.size)
    this.distance = new Int32Array(this.size)
    this.activeFlag = new Uint8Array(this.size)
    this.activeQueue = new Int32Array(this.size)
    this.orphanQueue = new Int32Array(this.size)
  }

  /** Cost of putting node p on the sink side (`toSource`) and on the source side (`toSink`). Call once per node. */
  setTerminals(p: number, toSource: number, toSink: number): void {
    const shared = Math.min(toSource, toSink)
    this.flow += shared
    this.terminal[p] = toSource - toSink
  }

  /** Symmetric capacity between p and its neighbour in direction k (which must exist). */
  setEdge(p: number, k: number, capacity: number): void {
    const q = p + this.offsets[k]!
    this.capacity[p * DIRECTIONS + k] = capacity
    this.capacity[q * DIRECTIONS + reverse(k)] = capacity
  }

  /** Runs the max-flow once; returns the flow (= the cost of the minimum cut). */
  maxFlow(): number {
    if (this.solved) throw new Error('maxFlow already ran on this graph')
    this.solved = true
    this.initialiseTrees()
    // the node being grown stays current across augmentations until it has nothing left to reach
    let current = -1
    for (;;) {
      if (current >= 0 && this.tree[current] === FREE) current = -1
      if (current < 0) {
        current = this.nextActive()
        if (current < 0) break
      }
      const meeting = this.grow(current)
      if (meeting < 0) {
        current = -1
        continue
      }
      this.time++
      this.augment(meeting >> 3, meeting & 7)
      this.adoptOrphans()
    }
    return this.flow
  }

  /** After maxFlow: true when node p is on the source side of the minimum cut. */
  isSourceSide(p: number): boolean {
    return this.tree[p] === SOURCE_TREE && this.parent[p] !== NO_PARENT
  }

  private initialiseTrees(): void {
    for (let p = 0; p < this.size; p++) {
      const t = this.terminal[p]!
      if (t === 0) continue
      this.tree[p] = t > 0 ? SOURCE_TREE : SINK_TREE
      this.parent[p] = TERMINAL
      this.distance[p] = 1
      this.activate(p)
    }
  }

  private activate(p: number): void {
    if (this.activeFlag[p]) return
    this.activeFlag[p] = 1
    this.activeQueue[(this.queueHead + this.queueLength) % this.size] = p
    this.queueLength++
  }

  private nextActive(): number {
    while (this.queueLength > 0) {
      const p = this.activeQueue[this.queueHead]!
      this.queueHead = (this.queueHead + 1) % this.size
      this.queueLength--
      this.activeFlag[p] = 0
      if (this.tree[p] !== FREE) return p
    }
    return -1
  }

  private neighbourExists(p: number, k: number): boolean {
    return (this.neighbours[p]! & (1 << k)) !== 0
  }

  /**
   * Grows the tree of p by one layer. Returns the arc (`from * 8 + k`, directed source → sink side)
   * where the two trees met, or -1 when p has no more free or foreign neighbours to reach.
   */
  private grow(p: number): number {
    const fromSource = this.tree[p] === SOURCE_TREE
    for (let k = 0; k < DIRECTIONS; k++) {
      // source tree grows along p → q, sink tree along q → p
      const residual = fromSource ? this.capacity[p * DIRECTIONS + k]! : (this.neighbourExists(p, k) ? this.capacity[(p + this.offsets[k]!) * DIRECTIONS + reverse(k)]! : 0)
      if (residual <= 0) continue
      const q = p + this.offsets[k]!
      const treeOfQ = this.tree[q]!
      if (treeOfQ === FREE) {
        this.tree[q] = this.tree[p]!
        this.parent[q] = reverse(k)
        this.timestamp[q] = this.timestamp[p]!
        this.distance[q] = this.distance[p]! + 1
        this.activate(q)
      } else if (treeOfQ !== this.tree[p]) {
        return fromSource ? p * DIRECTIONS + k : q * DIRECTIONS + reverse(k)
      } else if (this.timestamp[q]! <= this.timestamp[p]! && this.distance[q]! > this.distance[p]!) {
        // shorter path to the terminal through p
        this.parent[q] = reverse(k)
        this.timestamp[q] = this.timestamp[p]!
        this.distance[q] = this.distance[p]! + 1
      }
    }
    return -1
  }

  /** Pushes the bottleneck along source → s … s → t … t → sink through the meeting arc s → t. */
  private augment(s: number, k: number): void {
    const t = s + this.offsets[k]!
    let bottleneck = this.capacity[s * DIRECTIONS + k]!
    // source side: arcs parent → node
    for (let p = s; ;) {
      const d = this.parent[p]!
      if (d === TERMINAL) {
        bottleneck = Math.min(bottleneck, this.terminal[p]!)
        break
      }
      const q = p + this.offsets[d]!
      bottleneck = Math.min(bottleneck, this.capacity[q * DIRECTIONS + reverse(d)]!)
      p = q
    }
    // sink side: arcs node → parent
    for (let p = t; ;) {
      const d = this.parent[p]!
      if (d === TERMINAL) {
        bottleneck = Math.min(bottleneck, -this.terminal[p]!)
        break
      }
      bottleneck = Math.min(bottleneck, this.capacity[p * DIRECTIONS + d]!)
      p = p + this.offsets[d]!
    }

    this.capacity[s * DIRECTIONS + k]! -= bottleneck
    this.capacity[t * DIRECTIONS + reverse(k)]! += bottleneck
    for (let p = s; ;) {
      const d = this.parent[p]!
      if (d === TERMINAL) {
        this.terminal[p]! -= bottleneck
        if (this.terminal[p]! <= 0) this.makeOrphan(p)
        break
      }
      const q = p + this.offsets[d]!
      this.capacity[p * DIRECTIONS + d]! += bottleneck
      const arc = q * DIRECTIONS + reverse(d)
      this.capacity[arc]! -= bottleneck
      if (this.capacity[arc]! <= 0) this.makeOrphan(p)
      p = q
    }
    for (let p = t; ;) {
      const d = this.parent[p]!
      if (d === TERMINAL) {
        this.terminal[p]! += bottleneck
        if (this.terminal[p]! >= 0) this.makeOrphan(p)
        break
      }
      const q = p + this.offsets[d]!
      this.capacity[q * DIRECTIONS + reverse(d)]! += bottleneck
      const arc = p * DIRECTIONS + d
      this.capacity[arc]! -= bottleneck
      if (this.capacity[arc]! <= 0) this.makeOrphan(p)
      p = q
    }
    this.flow += bottleneck
  }

  private makeOrphan(p: number): void {
    this.parent[p] = ORPHAN
    this.orphanQueue[(this.orphanHead + this.orphanLength) % this.size] = p
    this.orphanLength++
  }

  private adoptOrphans(): void {
    // FIFO: BK processes orphans in the order they appeared
    while (this.orphanLength > 0) {
      const p = this.orphanQueue[this.orphanHead]!
      this.orphanHead = (this.orphanHead + 1) % this.size
      this.orphanLength--
      this.adopt(p)
    }
  }

  /** Finds p a new parent in its own tree that still reaches the terminal, or frees it. */
  private adopt(p: number): void {
    const inSource = this.tree[p] === SOURCE_TREE
    let bestDirection = NO_PARENT
    let bestDistance = INFINITE_DISTANCE
    for (let k = 0; k < DIRECTIONS; k++) {
      if (!this.neighbourExists(p, k)) continue
      const q = p + this.offsets[k]!
      if (this.tree[q] !== this.tree[p]) continue
      const residual = inSource ? this.capacity[q * DIRECTIONS + reverse(k)]! : this.capacity[p * DIRECTIONS + k]!
      if (residual <= 0) continue
      const d = this.distanceToTerminal(q)
      if (d < bestDistance) {
        bestDistance = d
        bestDirection = k
      }
    }
    if (bestDirection !== NO_PARENT) {
      this.parent[p] = bestDirection
      this.timestamp[p] = this.time
      this.distance[p] = bestDistance + 1
      return
    }
    // no valid parent: p leaves its tree; neighbours that could adopt it later become active,
    // its children become orphans
    for (let k = 0; k < DIRECTIONS; k++) {
      if (!this.neighbourExists(p, k)) continue
      const q = p + this.offsets[k]!
      if (this.tree[q] !== this.tree[p]) continue
      const residual = inSource ? this.capacity[q * DIRECTIONS + reverse(k)]! : this.capacity[p * DIRECTIONS + k]!
      if (residual > 0) this.activate(q)
      const dq = this.parent[q]!
      if (dq >= 0 && dq < DIRECTIONS && q + this.offsets[dq]! === p) this.makeOrphan(q)
    }
    this.tree[p] = FREE
    this.parent[p] = NO_PARENT
  }

  /** Distance from q to its terminal along parent links, or INFINITE_DISTANCE when the chain hits an orphan. */
  private distanceToTerminal(q: number): number {
    let d = 0
    let p = q
    for (;;) {
      if (this.timestamp[p] === this.time) {
        d += this.distance[p]!
        break
      }
      const direction = this.parent[p]!
      if (direction === TERMINAL) {
        this.timestamp[p] = this.time
        this.distance[p] = 1
        d += 1
        break
      }
      if (direction === ORPHAN || direction === NO_PARENT) return INFINITE_DISTANCE
      d++
      p = p + this.offsets[direction]!
    }
    // remember the distances found along the way so later searches stop early
    for (let r = q, remaining = d; this.timestamp[r] !== this.time; remaining--) {
      this.timestamp[r] = this.time
      this.distance[r] = remaining
      r = r + this.offsets[this.parent[r]!]!
    }
    return d
  }
}
