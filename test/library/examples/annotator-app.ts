/**
 * An annotator with its own AnnotatorLogic (README example): two clicks span a rectangle, which becomes a
 * segmentation annotation. The node keeps one history per frontend and answers the Loop's socket.io events.
 */
import {
  AnnotatorNode, loadNodeConfig, loadOrCreateNodeUuid, resolveDataFolder,
  type AnnotationContext, type AnnotatorLogic, type Point, type ToolOutput, type UserInput,
} from 'learning-loop-node'

class TwoClickRectangle implements AnnotatorLogic<{ corner?: Point }> {
  createEmptyHistory() {
    return {}
  }

  async handleUserInput(input: UserInput, history: { corner?: Point }, context: AnnotationContext): Promise<ToolOutput> {
    if (input.data.event_type !== 'left_mouse_down') return { svg: '', annotation: null }
    const click = input.data.coordinate
    if (!history.corner) {
      history.corner = click
      return { svg: `<circle cx="${click.x}" cy="${click.y}" r="3" fill="red" />`, annotation: null }
    }
    const [a, b] = [history.corner, click]
    history.corner = undefined
    const points = [a, { x: b.x, y: a.y }, b, { x: a.x, y: b.y }]
    return {
      svg: `<polygon points="${points.map((p) => `${p.x},${p.y}`).join(' ')}" fill="none" stroke="red" />`,
      annotation: { id: crypto.randomUUID(), shape: { points }, image_id: input.data.image_uuid, category_id: input.data.category.id },
    }
  }

  logoutUser(frontendId: string): boolean {
    return frontendId.length > 0
  }
}

const config = loadNodeConfig(process.env)
const { path: dataFolder } = await resolveDataFolder(config.dataFolder)
const node = await AnnotatorNode.create({
  name: 'rectangles', uuid: await loadOrCreateNodeUuid(dataFolder, 'rectangles'), config, dataFolder, logic: new TwoClickRectangle(),
})
node.runtime.installSignalHandlers()
await node.start()
console.log(`annotator listening on ${node.runtime.url}`)
