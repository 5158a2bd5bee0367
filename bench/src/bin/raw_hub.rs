//! The ceiling peer: a minimal tokio-tungstenite hub with no storage and small
//! buffers (4 KiB read buffer, no write buffering beyond one frame).
//!
//! Protocol: a client's first text frame is `agent` or `guest`. Every later text
//! frame of a guest is forwarded as is to every agent connection and answered with
//! `ack` to the guest. Agents only receive. Idle connections cost one task and the
//! socket's buffers; `bench connections` measures exactly that.
//!
//! Usage: `raw-hub <bind address>` (e.g. `127.0.0.1:9101`).

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, RwLock};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

type Agents = Arc<RwLock<Vec<mpsc::UnboundedSender<Message>>>>;

fn main() -> anyhow::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9101".to_string());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(bind))
}

async fn serve(bind: String) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&bind).await?;
    let agents: Agents = Arc::default();
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(pair) => pair,
            // EMFILE and friends: keep serving the connections we have.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(connection(tcp, agents.clone()));
    }
}

async fn connection(tcp: TcpStream, agents: Agents) {
    let _ = tcp.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let role = loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(_)) => continue,
            _ => return,
        }
    };
    if role.as_str() == "agent" {
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        agents.write().await.push(tx);
        let writer = async move {
            while let Some(m) = rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        };
        let reader = async move { while let Some(Ok(_)) = stream.next().await {} };
        tokio::select! { _ = writer => {}, _ = reader => {} }
        agents.write().await.retain(|a| !a.is_closed());
        return;
    }
    while let Some(Ok(msg)) = stream.next().await {
        if let Message::Text(t) = msg {
            for a in agents.read().await.iter() {
                let _ = a.send(Message::Text(t.clone()));
            }
            if sink.send(Message::text("ack")).await.is_err() {
                break;
            }
        }
    }
}
