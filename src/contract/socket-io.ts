/** Engine.IO path of every socket.io endpoint in the ecosystem: the Loop's and the detector's (§5, §5.5). */
export const SOCKET_IO_PATH = '/ws/socket.io'
