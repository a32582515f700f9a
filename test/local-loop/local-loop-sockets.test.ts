import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import { io, type Socket } from 'socket.io-client'
import { NodeAckTimeoutError } from '../../src/local-loop/node-hub.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { connectNode, login } from './loop-test-peer.ts'

const trainerStatus = (state: string | null, id = 'trainer-uuid-1') => ({
  id, name: 'test trainer', state, uptime: 1, errors: {}, progress: 0.5, pretrained_models: [], architecture: 'mock',
  context: { organization: 'zauberzeug', project: 'sockets' },
})

describe('local loop socket.io (§5)', () => {
  let fixture: TestLoop
  let url: string
  let cookie: string
  const sockets: Socket[] = []
  const node = async (options: Parameters<typeof connectNode>[1] = {}) => {
    const socket = await connectNode(url, { cookie, organization: 'zauberzeug', project: 'sockets', ...options })
    sockets.push(socket)
    return socket
  }

  beforeAll(async () => {
    fixture = await startTestLoop({ ackTimeoutMs: 5_000 })
    url = fixture.loop.url
    cookie = await login(url)
    await fixture.loop.createProject('zauberzeug', { project_name: 'sockets', complete: 1, box_categories: 1 })
  })
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close()
  })
  afterAll(() => fixture.cleanup())

  test('a connection without a session cookie is refused with a connect error, and counted', async () => {
    const before = fixture.loop.stats().sockets
    const error = await connectNode(url, {}).then(() => undefined, (e: Error) => e)
    expect(error?.message).toContain('unauthorized')
    const after = fixture.loop.stats().sockets
    expect(after.handshakes - before.handshakes).toBe(1)
    expect(after.rejected - before.rejected).toBe(1)
  })

  test('a logged-in node connects (websocket and polling) and is listed with its headers', async () => {
    const socket = await node({ nodeType: 'annotation_node' })
    const listed = fixture.loop.connectedNodes().find((n) => n.sid === socket.id)
    expect(listed).toMatchObject({ nodeType: 'annotation_node', organization: 'zauberzeug', project: 'sockets' })
    const polling = io(url, { path: '/ws/socket.io', extraHeaders: { cookie, nodeType: 'trainer' }, reconnection: false })
    sockets.push(polling)
    await new Promise<void>((resolve, reject) => {
      polling.once('connect', resolve)
      polling.once('connect_error', reject)
    })
    expect(fixture.loop.connectedNodes().some((n) => n.sid === polling.id)).toBe(true)
    const admin = (await (await fetch(`${url}/admin/nodes`)).json()) as { nodes: { sid: string }[] }
    expect(admin.nodes.map((n) => n.sid)).toContain(socket.id!)
  })

  test('update_trainer is acked with success and every status is kept in order', async () => {
    const socket = await node()
    const states = ['idle', 'initialized', 'data_downloading', 'data_downloaded', 'running']
    for (const state of states) {
      expect(await socket.timeout(2_000).emitWithAck('update_trainer', trainerStatus(state, 'trainer-history'))).toEqual({ success: true, error_msg: null, payload: null })
    }
    const history = fixture.loop.statusHistory('trainer-history')
    expect(history.map((h) => (h.status as { state: string }).state)).toEqual(states)
    expect(history.every((h) => h.event === 'update_trainer' && h.sid === socket.id)).toBe(true)
    const latest = fixture.loop.nodeStatuses().find((s) => s.nodeId === 'trainer-history')
    expect(latest).toMatchObject({ connected: true, status: { state: 'running' } })
    // once it has reported, the node can be found by its uuid and name
    expect(fixture.loop.connectedNodes().find((n) => n.nodeId === 'trainer-history')?.name).toBe('test trainer')
  })

  test('bad payloads and unknown events get a failure ack naming the problem', async () => {
    const socket = await node()
    const bad = (await socket.timeout(2_000).emitWithAck('update_trainer', { name: 'no id' })) as { success: boolean; error_msg: string }
    expect(bad.success).toBe(false)
    expect(bad.error_msg).toContain('/id: required field is missing')
    const notObject = (await socket.timeout(2_000).emitWithAck('update_annotation_node', 'hello')) as { success: boolean; error_msg: string }
    expect(notObject.success).toBe(false)
    const unknown = (await socket.timeout(2_000).emitWithAck('soft_reload')) as { success: boolean; error_msg: string }
    expect(unknown).toMatchObject({ success: false })
    expect(unknown.error_msg).toContain('unknown event "soft_reload"')
    const args = (await socket.timeout(2_000).emitWithAck('update_training', { organization: 'zauberzeug' })) as { success: boolean; error_msg: string }
    expect(args.error_msg).toContain('update_training expects (organization')
    // events without an ack callback are handled too, and the connection survives all of this
    socket.emit('update_trainer', 42)
    expect(await socket.timeout(2_000).emitWithAck('update_annotation_node', { id: 'a1', name: 'annotator' })).toMatchObject({ success: true })
  })

  test('event names that are JavaScript object members, or 10 KB long, get the short "unknown event" failure', async () => {
    const socket = await node()
    const unknownBefore = fixture.loop.stats().sockets.eventsReceived['(unknown)'] ?? 0
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const answer = (await socket.timeout(2_000).emitWithAck(name, { x: 1 })) as { success: boolean; error_msg: string }
      expect(answer).toMatchObject({ success: false })
      expect(answer.error_msg).toContain(`unknown event "${name}"`)
    }
    const long = (await socket.timeout(2_000).emitWithAck('n'.repeat(10_000))) as { success: boolean; error_msg: string }
    expect(long.error_msg).toContain('unknown event')
    expect(long.error_msg.length).toBeLessThan(300)
    const received = fixture.loop.stats().sockets.eventsReceived
    expect(Object.keys(received)).not.toContain('constructor')
    expect(received['(unknown)']! - unknownBefore).toBe(6)
  })

  test('an event over the attachment limit gets a failure ack naming the limit; the node stays connected', async () => {
    const socket = await node()
    const answer = (await socket.timeout(5_000).emitWithAck('update_trainer', { id: 't', files: Array.from({ length: 257 }, () => new Uint8Array(4)) })) as unknown
    expect(answer).toEqual({ success: false, error_msg: 'update_trainer: 257 binary attachments; at most 256 per event', payload: null })
    expect(socket.connected).toBe(true)
    expect(await socket.timeout(2_000).emitWithAck('update_annotation_node', { id: 'a2', name: 'annotator' })).toMatchObject({ success: true })
  })

  test('the admin API refuses socket.io\'s reserved event names with a 422 instead of failing inside', async () => {
    const socket = await node()
    await socket.timeout(2_000).emitWithAck('update_trainer', trainerStatus('idle', 'trainer-reserved'))
    for (const event of ['disconnect', 'connect', 'newListener']) {
      const response = await fetch(`${url}/admin/nodes/trainer-reserved/emit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event }) })
      expect(response.status).toBe(422)
      expect(((await response.json()) as { detail: string }).detail).toContain('reserved')
    }
  })

  test('update_training stores the confusion matrix on the project\'s training', async () => {
    const socket = await node()
    const training = fixture.loop.store.createTraining('zauberzeug', 'sockets', { trainerId: 'trainer-cm' })
    const update = { trainer_id: 'trainer-cm', trainer_name: 't', confusion_matrix: { cat: { tp: 1, fp: 2, fn: 3 } }, train_image_count: 3, test_image_count: 1, hyperparameters: {}, best_epoch: 4 }
    expect(await socket.timeout(2_000).emitWithAck('update_training', 'zauberzeug', 'sockets', update)).toMatchObject({ success: true })
    expect(fixture.loop.store.training('zauberzeug', 'sockets', training.number)?.lastUpdate).toMatchObject({ best_epoch: 4, confusion_matrix: { cat: { tp: 1 } } })
    expect(fixture.loop.trainingUpdates().at(-1)).toMatchObject({ organization: 'zauberzeug', project: 'sockets', trainingNumber: training.number })
    const unknownProject = (await socket.timeout(2_000).emitWithAck('update_training', 'zauberzeug', 'nope', update)) as unknown
    expect(unknownProject).toEqual({ success: false, error_msg: 'project zauberzeug/nope does not exist', payload: null })
    const badShape = (await socket.timeout(2_000).emitWithAck('update_training', 'zauberzeug', 'sockets', { ...update, best_epoch: 'best' })) as { error_msg: string }
    expect(badShape.error_msg).toContain('/best_epoch')
  })

  test('update_segmentation_annotation stores the annotation on its image', async () => {
    const socket = await node({ nodeType: 'annotation_node' })
    const [image] = fixture.loop.listImages('zauberzeug', 'sockets')
    const annotation = { id: 'seg-1', shape: { points: [{ x: 1, y: 1 }, { x: 10, y: 1 }, { x: 5, y: 8 }] }, image_id: image!.id, category_id: 'c' }
    expect(await socket.timeout(2_000).emitWithAck('update_segmentation_annotation', 'zauberzeug', 'sockets', annotation)).toMatchObject({ success: true })
    // the same id again replaces it
    expect(await socket.timeout(2_000).emitWithAck('update_segmentation_annotation', 'zauberzeug', 'sockets', { ...annotation, category_id: 'd' })).toMatchObject({ success: true })
    const stored = fixture.loop.imageData('zauberzeug', 'sockets', image!.id).segmentation_annotations as { id: string; category_id: string }[]
    expect(stored.filter((a) => a.id === 'seg-1')).toEqual([{ ...annotation, category_id: 'd' }])
    const missing = (await socket.timeout(2_000).emitWithAck('update_segmentation_annotation', 'zauberzeug', 'sockets', { ...annotation, image_id: 'nope' })) as { error_msg: string }
    expect(missing.error_msg).toContain('image nope does not exist')
  })

  test('startTraining sends begin_training to the trainer and returns its ack', async () => {
    const socket = await node()
    await socket.timeout(2_000).emitWithAck('update_trainer', trainerStatus('idle', 'trainer-begin'))
    const received: unknown[][] = []
    socket.on('begin_training', (organization: string, project: string, details: unknown, ack: (r: unknown) => void) => {
      received.push([organization, project, details])
      ack({ success: true, error_msg: null, payload: null })
    })
    const { training, ack } = await fixture.loop.startTraining('zauberzeug', 'sockets', { node: 'trainer-begin', modelVariant: 'small', hyperparameters: { epochs: 3 } })
    expect(ack).toEqual({ success: true, error_msg: null, payload: null })
    expect(training).toMatchObject({ state: 'running', trainerId: 'trainer-begin', modelVariant: 'small' })
    expect(received).toHaveLength(1)
    const [organization, project, details] = received[0] as [string, string, Record<string, unknown>]
    expect([organization, project]).toEqual(['zauberzeug', 'sockets'])
    expect(details).toMatchObject({ training_number: training.number, model_variant: 'small', hyperparameters: { epochs: 3 }, base_model_uuid: null })
    expect((details.categories as unknown[]).length).toBe(1)
    // the trainer's reported state follows onto the training
    await socket.timeout(2_000).emitWithAck('update_trainer', trainerStatus('data_downloading', 'trainer-begin'))
    expect(fixture.loop.store.training('zauberzeug', 'sockets', training.number)?.state).toBe('data_downloading')
  })

  test('stop/abort and any event via emitToNode return the node\'s ack; a silent node times out with a clear error', async () => {
    const socket = await node()
    await socket.timeout(2_000).emitWithAck('update_trainer', trainerStatus('running', 'trainer-stop'))
    socket.on('stop_training', (ack: (r: unknown) => void) => ack({ success: true, error_msg: null, payload: null }))
    socket.on('abort_training', (ack: (r: unknown) => void) => ack({ success: false, error_msg: 'nothing to abort', payload: null }))
    socket.on('handle_user_input', (input: { frontend_id: string }, ack: (r: unknown) => void) => ack({ success: true, error_msg: null, payload: `<svg id="${input.frontend_id}"/>` }))
    expect(await fixture.loop.stopTraining('trainer-stop')).toMatchObject({ success: true })
    expect(await fixture.loop.abortTraining('trainer-stop')).toMatchObject({ success: false, error_msg: 'nothing to abort' })
    expect(await fixture.loop.emitToNode((n) => n.nodeId === 'trainer-stop', 'handle_user_input', { frontend_id: 'f1' })).toMatchObject({ payload: '<svg id="f1"/>' })
    const viaAdmin = await fetch(`${url}/admin/nodes/trainer-stop/emit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event: 'abort_training' }) })
    expect(await viaAdmin.json()).toEqual({ ack: { success: false, error_msg: 'nothing to abort', payload: null } })

    const silent = await fixture.loop.emit('trainer-stop', 'user_logout', ['sid'], { timeoutMs: 200 }).then(() => undefined, (e: Error) => e)
    expect(silent).toBeInstanceOf(NodeAckTimeoutError)
    expect(silent!.message).toBe('node test trainer did not acknowledge "user_logout" within 200 ms')
    const adminTimeout = await fetch(`${url}/admin/nodes/trainer-stop/emit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event: 'user_logout', args: ['x'], timeout_ms: 100 }) })
    expect(adminTimeout.status).toBe(504)
  })

  test('restart is sent without waiting for an ack; an unknown node is a 404 naming it', async () => {
    const socket = await node()
    let restarted = false
    socket.on('restart', () => { restarted = true })
    expect((await fetch(`${url}/admin/nodes/${socket.id}/restart`, { method: 'POST' })).status).toBe(200)
    await waitFor(() => restarted, 5_000, 'restart event')
    const missing = await fixture.loop.emitToNode('ghost', 'stop_training').then(() => undefined, (e: Error) => e)
    expect(missing?.message).toContain('no connected node matches "ghost"')
    expect((await fetch(`${url}/admin/nodes/ghost/stop-training`, { method: 'POST' })).status).toBe(404)
  })

  test('a disconnected node leaves the list but keeps its history', async () => {
    const socket = await node()
    await socket.timeout(2_000).emitWithAck('update_trainer', trainerStatus('idle', 'trainer-gone'))
    socket.close()
    await waitFor(() => !fixture.loop.connectedNodes().some((n) => n.nodeId === 'trainer-gone'), 5_000, 'disconnect')
    expect(fixture.loop.nodeStatuses().find((s) => s.nodeId === 'trainer-gone')).toMatchObject({ connected: false })
  })
})
