/** The detector's camera entry points (detector/cameras/), fuzzed in detector-cameras.fuzz.test.ts. */
export const CAMERA_REST_ENTRY_POINTS = [
  'GET /cameras', 'GET /cameras/:id', 'PUT /cameras/:id', 'DELETE /cameras/:id', 'GET /cameras/:id/frame.jpg', 'GET /cameras/:id/last',
  'GET /cameras/:id/events',
]
export const CAMERA_SOCKET_EVENTS = ['cameras', 'get_camera', 'put_camera', 'delete_camera', 'join_camera', 'leave_camera']
