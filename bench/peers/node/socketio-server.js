// The Socket.IO peer: what a team would write instead of Switchboard. One Node
// process, Socket.IO 4.8, every message INSERTed (its own transaction) into the
// same database as the hub's before it is emitted to the agents and acknowledged.
//
// Env: PORT, DB = "sqlite:<path>" (better-sqlite3, WAL, synchronous=NORMAL, like the
// hub) or a postgres:// URL (pg pool of 8 connections, like the hub's pool).
//
// Clients connect with auth {role: "agent"} or {role: "guest", conversation: "<id>"}.
// A guest emits "send" {c, id, b} with an ack callback; the server stores the row
// (seq per conversation, unique client_msg_id), emits "message" to the agents and
// the conversation's room, then acks {seq}.
'use strict';
const { Server } = require('socket.io');

const port = Number(process.env.PORT || 9102);
const dbUrl = process.env.DB || 'sqlite:./data/peer.db';

async function openStore() {
  if (dbUrl.startsWith('sqlite:')) {
    const Database = require('better-sqlite3');
    const db = new Database(dbUrl.slice('sqlite:'.length));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(`CREATE TABLE IF NOT EXISTS messages (
      id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL,
      client_msg_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL, created_at INTEGER NOT NULL,
      UNIQUE (conversation_id, seq))`);
    const insert = db.prepare(
      'INSERT INTO messages (conversation_id, seq, client_msg_id, body, created_at) VALUES (?, ?, ?, ?, ?)');
    return async (c, seq, id, b) => { insert.run(c, seq, id, b, Date.now()); };
  }
  const { Pool } = require('pg');
  const pool = new Pool({ connectionString: dbUrl, max: 8 });
  await pool.query(`CREATE TABLE IF NOT EXISTS messages (
    id BIGSERIAL PRIMARY KEY, conversation_id TEXT NOT NULL, seq BIGINT NOT NULL,
    client_msg_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL, created_at BIGINT NOT NULL,
    UNIQUE (conversation_id, seq))`);
  return async (c, seq, id, b) => {
    await pool.query(
      'INSERT INTO messages (conversation_id, seq, client_msg_id, body, created_at) VALUES ($1, $2, $3, $4, $5)',
      [c, seq, id, b, Date.now()]);
  };
}

async function main() {
  const store = await openStore();
  const seqs = new Map();
  const io = new Server(port, { serveClient: false, cors: { origin: '*' } });
  io.on('connection', (socket) => {
    const auth = socket.handshake.auth || {};
    const query = socket.handshake.query || {};
    const role = auth.role || query.role;
    if (role === 'agent') {
      socket.join('agents');
      return;
    }
    const conversation = String(auth.conversation || query.conversation || '');
    socket.join(conversation);
    socket.on('send', async (msg, ack) => {
      try {
        const c = conversation;
        const seq = (seqs.get(c) || 0) + 1;
        seqs.set(c, seq);
        await store(c, seq, String(msg.id), String(msg.b));
        const frame = { c, seq, id: msg.id, b: msg.b };
        io.to('agents').to(c).emit('message', frame);
        if (typeof ack === 'function') ack({ seq });
      } catch (e) {
        if (typeof ack === 'function') ack({ error: String(e) });
      }
    });
  });
  process.stderr.write(`socket.io peer on ${port} (${dbUrl.split(':')[0]})\n`);
}

main().catch((e) => { console.error(e); process.exit(1); });
