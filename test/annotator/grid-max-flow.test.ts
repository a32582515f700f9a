import { describe, expect, test } from 'bun:test'
import { GRID_DIRECTIONS, GridGraph } from '../../src/annotator/grid-max-flow.ts'

/** Park–Miller: the same random grids on every run. */
function seeded(seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 16807) % 2147483647
    return (state - 1) / 2147483646
  }
}

interface RandomGrid {
  width: number
  height: number
  source: number[]
  sink: number[]
  /** [p, k, capacity] for k in 0..3 */
  edges: [number, number, number][]
}

function randomGrid(width: number, height: number, random: () => number, integers = true): RandomGrid {
  const value = (scale: number) => (integers ? Math.floor(random() * scale) : random() * scale)
  const grid: RandomGrid = { width, height, source: [], sink: [], edges: [] }
  for (let p = 0; p < width * height; p++) {
    grid.source.push(random() < 0.4 ? value(20) : 0)
    grid.sink.push(random() < 0.4 ? value(20) : 0)
    const x = p % width
    const y = Math.floor(p / width)
    for (let k = 0; k < 4; k++) {
      const [dx, dy] = GRID_DIRECTIONS[k]!
      if (x + dx < 0 || x + dx >= width || y + dy >= height) continue
      grid.edges.push([p, k, value(10)])
    }
  }
  return grid
}

/** Edmonds–Karp on an explicit adjacency matrix: the reference. */
function referenceMaxFlow(grid: RandomGrid): number {
  const n = grid.width * grid.height + 2
  const s = n - 2
  const t = n - 1
  const capacity = Array.from({ length: n }, () => new Float64Array(n))
  grid.source.forEach((c, p) => { capacity[s]![p]! += c })
  grid.sink.forEach((c, p) => { capacity[p]![t]! += c })
  for (const [p, k, c] of grid.edges) {
    const [dx, dy] = GRID_DIRECTIONS[k]!
    const q = p + dy * grid.width + dx
    capacity[p]![q]! += c
    capacity[q]![p]! += c
  }
  let flow = 0
  for (;;) {
    const parent = new Int32Array(n).fill(-1)
    parent[s] = s
    const queue = [s]
    while (queue.length && parent[t] === -1) {
      const u = queue.shift()!
      for (let v = 0; v < n; v++) {
        if (parent[v] === -1 && capacity[u]![v]! > 1e-12) {
          parent[v] = u
          queue.push(v)
        }
      }
    }
    if (parent[t] === -1) return flow
    let bottleneck = Infinity
    for (let v = t; v !== s; v = parent[v]!) bottleneck = Math.min(bottleneck, capacity[parent[v]!]![v]!)
    for (let v = t; v !== s; v = parent[v]!) {
      capacity[parent[v]!]![v]! -= bottleneck
      capacity[v]![parent[v]!]! += bottleneck
    }
    flow += bottleneck
  }
}

function solve(grid: RandomGrid): { flow: number; cutCost: number } {
  const graph = new GridGraph(grid.width, grid.height)
  grid.source.forEach((c, p) => graph.setTerminals(p, c, grid.sink[p]!))
  for (const [p, k, c] of grid.edges) graph.setEdge(p, k, c)
  const flow = graph.maxFlow()
  // the cost of the cut the graph reports must equal the flow (max-flow = min-cut)
  let cutCost = 0
  for (let p = 0; p < grid.width * grid.height; p++) cutCost += graph.isSourceSide(p) ? grid.sink[p]! : grid.source[p]!
  for (const [p, k, c] of grid.edges) {
    const [dx, dy] = GRID_DIRECTIONS[k]!
    const q = p + dy * grid.width + dx
    if (graph.isSourceSide(p) !== graph.isSourceSide(q)) cutCost += c
  }
  return { flow, cutCost }
}

describe('GridGraph max-flow', () => {
  test('equals Edmonds–Karp on 60 random 8-connected grids, and its cut costs exactly the flow', () => {
    const random = seeded(4242)
    for (let i = 0; i < 60; i++) {
      const size = i < 50 ? 7 : 16
      const grid = randomGrid(2 + Math.floor(random() * size), 2 + Math.floor(random() * size), random, i % 2 === 0)
      const expected = referenceMaxFlow(grid)
      const { flow, cutCost } = solve(grid)
      expect(flow).toBeCloseTo(expected, 6)
      expect(cutCost).toBeCloseTo(expected, 6)
    }
  })

  test('a two-pixel graph: the cheap side wins', () => {
    const graph = new GridGraph(2, 1)
    graph.setTerminals(0, 10, 0)
    graph.setTerminals(1, 0, 10)
    graph.setEdge(0, 0, 3)
    expect(graph.maxFlow()).toBe(3)
    expect(graph.isSourceSide(0)).toBe(true)
    expect(graph.isSourceSide(1)).toBe(false)
  })

  test('refuses an empty grid and a second run', () => {
    expect(() => new GridGraph(0, 3)).toThrow('at least 1×1')
    const graph = new GridGraph(1, 1)
    graph.maxFlow()
    expect(() => graph.maxFlow()).toThrow('already ran')
  })
})
