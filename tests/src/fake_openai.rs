//! A fake OpenAI-compatible server for the bot's tests: `POST /v1/chat/completions`
//! and `POST /v1/embeddings` on 127.0.0.1:0, in its own actix system and thread.
//!
//! Chat answers come from a responder the test sets (by default a fixed JSON
//! answer); a test can make the next calls fail with a status, stall past the hub's
//! budget, or wait at a gate the test opens — so bursts and timeouts are driven by
//! the test, not by the clock. Every request body is recorded so tests can check the
//! exact prompt the hub assembled. Embeddings are deterministic bag-of-words
//! vectors (hashed words), so similar texts get similar vectors.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

/// What the fake does with one chat request.
#[derive(Clone, Debug)]
pub enum FakeReply {
    /// Answer 200 with this message content.
    Content(String),
    /// Answer with this HTTP status and an OpenAI-style error body.
    Status(u16),
    /// Answer after this long (to outlast the hub's budget).
    Delay(Duration, String),
}

type Responder = Arc<dyn Fn(&Value) -> FakeReply + Send + Sync>;

struct State {
    chats: Vec<Value>,
    embeddings: Vec<Value>,
    responder: Responder,
    /// Replies to use, in order, before the responder.
    queued: Vec<FakeReply>,
    embeddings_fail: bool,
    /// Chat requests received, answered or not (held ones included).
    arrived: usize,
}

/// The fake server.
pub struct FakeOpenAi {
    /// `http://127.0.0.1:<port>/v1`, the value for `OPENAI_BASE_URL`.
    pub base: String,
    state: Arc<Mutex<State>>,
    gate: watch::Sender<bool>,
    handle: actix_web::dev::ServerHandle,
}

/// Number of dimensions of the fake's embeddings.
pub const EMBEDDING_DIMS: usize = 128;

/// The fake's embedding of `text`: words (lowercased, alphanumeric runs) hashed
/// into [`EMBEDDING_DIMS`] buckets, L2-normalised.
pub fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; EMBEDDING_DIMS];
    for word in text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1)
    {
        // FNV-1a: stable across runs and platforms.
        let mut h: u32 = 0x811c_9dc5;
        for b in word.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        v[h as usize % EMBEDDING_DIMS] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// A chat completion body as OpenAI sends it.
pub fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000u32,
        "model": "fake-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
            "logprobs": null
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    })
}

/// The bot's JSON answer format (`docs/bot.md`, "Prompts").
pub fn bot_answer(reply: &str, confidence: f64, sources: &[&str]) -> String {
    json!({"reply": reply, "confidence": confidence, "sources": sources, "handover": false})
        .to_string()
}

impl FakeOpenAi {
    /// Starts the fake; chat requests answer `default` until told otherwise.
    pub async fn start(default: FakeReply) -> Self {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let state = Arc::new(Mutex::new(State {
            chats: Vec::new(),
            embeddings: Vec::new(),
            responder: Arc::new(move |_| default.clone()),
            queued: Vec::new(),
            embeddings_fail: false,
            arrived: 0,
        }));
        let (gate, gate_rx) = watch::channel(true);
        let shared = state.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let st = shared.clone();
                    let gate_rx = gate_rx.clone();
                    App::new()
                        .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                        .default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                        let st = st.clone();
                        let mut gate_rx = gate_rx.clone();
                        async move {
                            let path = req.path().to_string();
                            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            if path.ends_with("/embeddings") {
                                let fail = {
                                    let mut s = st.lock().unwrap();
                                    s.embeddings.push(body.clone());
                                    s.embeddings_fail
                                };
                                if fail {
                                    return HttpResponse::ServiceUnavailable().json(
                                        json!({"error": {"message": "embeddings down", "type": "server_error", "param": null, "code": null}}),
                                    );
                                }
                                let inputs: Vec<String> = match &body["input"] {
                                    Value::String(s) => vec![s.clone()],
                                    Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                                    _ => Vec::new(),
                                };
                                let data: Vec<Value> = inputs
                                    .iter()
                                    .enumerate()
                                    .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embed(t)}))
                                    .collect();
                                return HttpResponse::Ok().json(json!({
                                    "object": "list", "data": data, "model": "fake-embedding",
                                    "usage": {"prompt_tokens": 1, "total_tokens": 1}
                                }));
                            }
                            if !path.ends_with("/chat/completions") {
                                return HttpResponse::NotFound().finish();
                            }
                            st.lock().unwrap().arrived += 1;
                            // Wait while the test holds the gate closed.
                            let _ = gate_rx.wait_for(|open| *open).await;
                            let reply = {
                                let mut s = st.lock().unwrap();
                                s.chats.push(body.clone());
                                if s.queued.is_empty() {
                                    (s.responder)(&body)
                                } else {
                                    s.queued.remove(0)
                                }
                            };
                            match reply {
                                FakeReply::Content(c) => HttpResponse::Ok().json(completion(&c)),
                                FakeReply::Delay(d, c) => {
                                    actix_rt::time::sleep(d).await;
                                    HttpResponse::Ok().json(completion(&c))
                                }
                                FakeReply::Status(code) => HttpResponse::build(
                                    actix_web::http::StatusCode::from_u16(code).unwrap(),
                                )
                                .json(json!({"error": {"message": "fake failure", "type": "server_error", "param": null, "code": null}})),
                            }
                        }
                    }))
                })
                .workers(1)
                .bind("127.0.0.1:0")
                .expect("bind fake openai");
                let addr = server.addrs()[0];
                let server = server.run();
                let _ = tx.send((addr, server.handle()));
                let _ = server.await;
            });
        });
        let (addr, handle) = rx.await.expect("fake openai started");
        Self {
            base: format!("http://{addr}/v1"),
            state,
            gate,
            handle,
        }
    }

    /// Answers every later chat request with what `f` returns for its body.
    pub fn respond(&self, f: impl Fn(&Value) -> FakeReply + Send + Sync + 'static) {
        self.state.lock().unwrap().responder = Arc::new(f);
    }

    /// Uses `replies` for the next chat requests, in order, before the responder.
    pub fn queue(&self, replies: Vec<FakeReply>) {
        self.state.lock().unwrap().queued.extend(replies);
    }

    /// Makes embedding requests fail (503) or work again.
    pub fn fail_embeddings(&self, fail: bool) {
        self.state.lock().unwrap().embeddings_fail = fail;
    }

    /// Holds chat requests (they wait, unanswered) until [`FakeOpenAi::open`].
    pub fn hold(&self) {
        let _ = self.gate.send(false);
    }

    /// Lets held and later chat requests through.
    pub fn open(&self) {
        let _ = self.gate.send(true);
    }

    /// Every chat request body so far, oldest first (held ones once answered).
    pub fn chats(&self) -> Vec<Value> {
        self.state.lock().unwrap().chats.clone()
    }

    /// Chat requests received so far, including ones waiting at a closed gate.
    pub fn arrived(&self) -> usize {
        self.state.lock().unwrap().arrived
    }

    /// Waits (up to the harness's patience) until `n` chat requests have arrived.
    pub async fn wait_arrived(&self, n: usize) {
        crate::eventually(
            &format!("{n} chat requests arriving at the fake model"),
            || async { (self.arrived() >= n).then_some(()) },
        )
        .await
    }

    /// Every embedding request body so far.
    pub fn embedding_requests(&self) -> Vec<Value> {
        self.state.lock().unwrap().embeddings.clone()
    }

    /// Waits (up to the harness's patience) for at least `n` chat requests.
    pub async fn wait_chats(&self, n: usize) -> Vec<Value> {
        crate::eventually(&format!("{n} chat requests at the fake model"), || async {
            let c = self.chats();
            (c.len() >= n).then_some(c)
        })
        .await
    }

    /// Stops the fake.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// The system prompt of a recorded chat request.
pub fn system_prompt(chat: &Value) -> String {
    chat["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The messages after the system prompt, as (role, content) pairs.
pub fn dialogue(chat: &Value) -> Vec<(String, String)> {
    chat["messages"]
        .as_array()
        .map(|a| {
            a.iter()
                .skip(1)
                .map(|m| {
                    (
                        m["role"].as_str().unwrap_or_default().to_string(),
                        m["content"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
