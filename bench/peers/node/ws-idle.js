// The Node `ws` peer of the connections workload: accepts WebSocket connections
// and keeps them open, nothing else. Env: PORT.
'use strict';
const { WebSocketServer } = require('ws');
const port = Number(process.env.PORT || 9104);
const wss = new WebSocketServer({ port, perMessageDeflate: false });
wss.on('connection', (ws) => { ws.on('message', () => {}); ws.on('error', () => {}); });
process.stderr.write(`ws idle peer on ${port}\n`);
