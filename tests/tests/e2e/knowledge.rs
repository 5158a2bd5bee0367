//! The knowledge base through the real server: document CRUD with validation and
//! team permissions, re-indexing on change (the old wording no longer finds an
//! edited entry, the new one does; a deleted one is gone), Markdown import, the
//! retrieval quality bar on a small travel knowledge base (20 written questions,
//! the right document in the top 3 for at least 18 — lexical only, and hybrid with
//! embeddings from a fake OpenAI-compatible endpoint), the meaning of confidence,
//! an embedding endpoint that is down when a document is written, and a change
//! written to the database by another node seen by the next search.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard::config::Secret;
use switchboard_e2e::fake_openai::{FakeOpenAi, FakeReply};
use switchboard_e2e::{assert_error_body, both_backends, eventually, Backend, TestServer};

/// The retrieval bar: expected document in the top 3 for at least this many of
/// the 20 questions.
const QUALITY_BAR: usize = 18;

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/knowledge/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

async fn server_with_fake(backend: Backend, fake: &FakeOpenAi) -> TestServer {
    let base = fake.base.clone();
    TestServer::start_with(backend, move |cfg| {
        cfg.ai.base_url = Some(base);
        cfg.ai.api_key = Some(Secret::new("k"));
    })
    .await
}

async fn delete(srv: &TestServer, path: &str, token: &str) -> (u16, Value) {
    let resp = srv
        .http
        .delete(srv.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn create(srv: &TestServer, token: &str, doc: Value) -> Value {
    let (status, body) = srv.post("/api/knowledge", Some(token), &doc).await;
    assert_eq!(status, 201, "{body}");
    body["document"].clone()
}

async fn search(srv: &TestServer, token: &str, team: &str, q: &str) -> Value {
    let path = format!(
        "/api/knowledge/search?team_id={team}&k=5&q={}",
        url_encode(q)
    );
    let (status, body) = srv.get(&path, Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn labels(result: &Value) -> Vec<String> {
    result["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["label"].as_str().unwrap().to_string())
        .collect()
}

/// Loads `travel.json` through the API.
async fn load_travel_kb(srv: &TestServer, token: &str, team: &str) {
    for mut doc in fixture("travel.json")["documents"]
        .as_array()
        .unwrap()
        .clone()
    {
        doc["team_id"] = json!(team);
        create(srv, token, doc).await;
    }
}

/// Asks the 20 questions; returns how many had the expected document in the top 3,
/// printing each question's rank.
async fn quality(srv: &TestServer, token: &str, team: &str, mode: &str) -> usize {
    let mut good = 0;
    for q in fixture("questions.json")["questions"].as_array().unwrap() {
        let question = q["q"].as_str().unwrap();
        let expected = q["expected"].as_str().unwrap();
        let result = search(srv, token, team, question).await;
        assert_eq!(result["mode"], mode, "{result}");
        let got = labels(&result);
        let rank = got.iter().position(|l| l == expected).map(|i| i + 1);
        if rank.is_some_and(|r| r <= 3) {
            good += 1;
        }
        let top = &result["hits"][0];
        eprintln!(
            "[{mode}] rank {:>4}  conf {:.2}  {question:?} -> expected {expected}, top {} {:?}",
            rank.map_or("-".to_string(), |r| r.to_string()),
            top["confidence"].as_f64().unwrap_or(0.0),
            top["label"],
            got
        );
    }
    eprintln!("[{mode}] {good}/20 in the top 3");
    good
}

both_backends! {
    async fn crud_reindexing_validation_and_permissions(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;

        // FAQ entries are numbered per team when no code is given.
        let dog = create(&srv, &admin, json!({"team_id": team, "kind": "faq",
            "title": "Can I bring my dog on the trek?",
            "body": "Dogs are welcome on the waterfall treks if they stay on a leash."})).await;
        assert_eq!(dog["ref_code"], "1");
        assert_eq!(dog["label"], "FAQ #1");
        assert_eq!(dog["revision"], 1);
        assert_eq!(dog["chunks"], 1);
        let second = create(&srv, &admin, json!({"team_id": team, "kind": "faq",
            "title": "Do you offer student discounts?",
            "body": "Students get 10% off with a valid college ID."})).await;
        assert_eq!(second["ref_code"], "2");

        // A package needs its code; the fields come back as sent.
        let (status, body) = srv.post("/api/knowledge", Some(&admin), &json!({"team_id": team,
            "kind": "package", "title": "Umroh Maret", "body": "9 hari"})).await;
        assert_eq!(status, 400);
        assert_error_body(&body, "validation");
        assert!(body["message"].as_str().unwrap().contains("code"), "{body}");
        let pkg = create(&srv, &admin, json!({"team_id": team, "kind": "package",
            "ref_code": "UMR_MAR_2025_HEMAT", "title": "Paket Umroh Maret 2025 Hemat",
            "fields": {"price": "Rp 25.000.000", "duration_days": 9, "departure_date": "15 Maret 2025"},
            "body": "Paket hemat 9 hari."})).await;
        assert_eq!(pkg["label"], "Package #UMR_MAR_2025_HEMAT");
        assert_eq!(pkg["fields"]["duration_days"], 9);
        // The same code twice is a conflict.
        let (status, body) = srv.post("/api/knowledge", Some(&admin), &json!({"team_id": team,
            "kind": "package", "ref_code": "UMR_MAR_2025_HEMAT", "title": "Again"})).await;
        assert_eq!(status, 409, "{body}");
        assert_error_body(&body, "conflict");

        // Validation: unknown kind, oversized body, empty title.
        let (status, body) = srv.post("/api/knowledge", Some(&admin), &json!({"team_id": team,
            "kind": "brochure", "title": "X", "body": "Y"})).await;
        assert_eq!(status, 400);
        assert_error_body(&body, "validation");
        assert!(body["message"].as_str().unwrap().contains("kind"), "{body}");
        let (status, body) = srv.post("/api/knowledge", Some(&admin), &json!({"team_id": team,
            "kind": "text", "title": "Huge", "body": "word ".repeat(21_000)})).await;
        assert_eq!(status, 400, "{body}");
        assert_error_body(&body, "validation");
        assert!(body["message"].as_str().unwrap().contains("100 KB"), "{body}");
        let (status, body) = srv.post("/api/knowledge", Some(&admin), &json!({"team_id": team,
            "kind": "faq", "title": "  ", "body": "Y"})).await;
        assert_eq!(status, 400);
        assert_error_body(&body, "validation");

        // Markdown import: one document, split on headings, cited by a slug.
        let md = "# Refund Policy\n\n## Before departure\nFull refund up to 30 days before.\n\n## After departure\nNo refund once the trip has started.\n";
        let (status, body) = srv.post("/api/knowledge/import", Some(&admin),
            &json!({"team_id": team, "markdown": md})).await;
        assert_eq!(status, 201, "{body}");
        let policy = &body["documents"][0];
        assert_eq!(policy["kind"], "markdown");
        assert_eq!(policy["label"], "Doc #refund-policy");
        assert_eq!(policy["chunks"], 2);
        // FAQ-style Markdown becomes FAQ entries, numbered after the existing ones.
        let faq_md = "# FAQ\n\n## Is wifi available in the homestays?\nMost homestays have wifi; signal in the hills is weak.\n\n## Can I charge my phone on the bus?\nYes, every seat has a USB socket.\n";
        let (status, body) = srv.post("/api/knowledge/import", Some(&admin),
            &json!({"team_id": team, "markdown": faq_md, "as_faq": true})).await;
        assert_eq!(status, 201, "{body}");
        let refs: Vec<&str> = body["documents"].as_array().unwrap().iter()
            .map(|d| d["ref_code"].as_str().unwrap()).collect();
        assert_eq!(refs, ["3", "4"]);

        let (status, body) = srv.get(&format!("/api/knowledge?team_id={team}&kind=faq"), Some(&admin)).await;
        assert_eq!(status, 200, "{body}");
        let listed: Vec<&str> = body["documents"].as_array().unwrap().iter()
            .map(|d| d["label"].as_str().unwrap()).collect();
        assert_eq!(listed, ["FAQ #1", "FAQ #2", "FAQ #3", "FAQ #4"]);
        let (_, body) = srv.get(&format!("/api/knowledge?team_id={team}"), Some(&admin)).await;
        assert_eq!(body["documents"].as_array().unwrap().len(), 6);

        let found = search(&srv, &admin, &team, "is my dog allowed if leashed?").await;
        assert_eq!(found["mode"], "lexical");
        assert_eq!(found["hits"][0]["label"], "FAQ #1", "{found}");
        assert_eq!(found["hits"][0]["answer"], "Dogs are welcome on the waterfall treks if they stay on a leash.");
        let found = search(&srv, &admin, &team, "refund after the trip started").await;
        assert_eq!(found["hits"][0]["label"], "Doc #refund-policy", "{found}");
        assert!(found["hits"][0]["text"].as_str().unwrap().starts_with("Refund Policy > After departure"), "{found}");

        // Edit: the old wording no longer finds the entry, the new one does.
        let id = dog["id"].as_str().unwrap();
        let (status, body) = srv.put(&format!("/api/knowledge/{id}"), Some(&admin), &json!({
            "title": "Are pets allowed?", "body": "Sorry, no animals of any kind on our buses."})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["document"]["revision"], 2);
        assert_eq!(body["document"]["ref_code"], "1");
        let old = search(&srv, &admin, &team, "dog leash").await;
        assert!(!labels(&old).contains(&"FAQ #1".to_string()), "{old}");
        let new = search(&srv, &admin, &team, "are animals allowed on board?").await;
        assert_eq!(new["hits"][0]["label"], "FAQ #1", "{new}");
        assert_eq!(new["hits"][0]["answer"], "Sorry, no animals of any kind on our buses.");

        // Delete: gone from the API and from search.
        let (status, _) = delete(&srv, &format!("/api/knowledge/{id}"), &admin).await;
        assert_eq!(status, 204);
        let (status, body) = srv.get(&format!("/api/knowledge/{id}"), Some(&admin)).await;
        assert_eq!(status, 404);
        assert_error_body(&body, "not_found");
        let gone = search(&srv, &admin, &team, "are animals allowed on board?").await;
        assert!(!labels(&gone).contains(&"FAQ #1".to_string()), "{gone}");

        // Permissions: an agent of the team reads and searches but does not write;
        // an agent of another team gets 403 everywhere.
        let member = srv.agent("agent").await;
        let (status, _) = srv.get("/api/knowledge", Some(&member.token)).await;
        assert_eq!(status, 200, "the only team is the default");
        let (status, body) = srv.get(&format!("/api/knowledge/{}", pkg["id"].as_str().unwrap()), Some(&member.token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["document"]["body"], "Paket hemat 9 hari.");
        search(&srv, &member.token, &team, "umroh").await;
        let (status, body) = srv.post("/api/knowledge", Some(&member.token), &json!({"team_id": team,
            "kind": "faq", "title": "Q?", "body": "A."})).await;
        assert_eq!(status, 403);
        assert_error_body(&body, "forbidden");
        let lead = srv.agent_in("lead", Some(&[&team])).await;
        create(&srv, &lead.token, json!({"kind": "faq", "title": "Team lead entry?", "body": "Allowed."})).await;

        let other = srv.create_team("Other", "other").await;
        let outsider = srv.agent_in("lead", Some(&[&other])).await;
        for path in [format!("/api/knowledge?team_id={team}"),
                     format!("/api/knowledge/search?team_id={team}&q=umroh"),
                     format!("/api/knowledge/{}", pkg["id"].as_str().unwrap())] {
            let (status, body) = srv.get(&path, Some(&outsider.token)).await;
            assert_eq!(status, 403, "{path}: {body}");
            assert_error_body(&body, "forbidden");
        }
        let (status, _) = srv.post("/api/knowledge", Some(&outsider.token), &json!({"team_id": team,
            "kind": "faq", "title": "Q?", "body": "A."})).await;
        assert_eq!(status, 403);
        let (status, _) = delete(&srv, &format!("/api/knowledge/{}", pkg["id"].as_str().unwrap()), &outsider.token).await;
        assert_eq!(status, 403);
        // Their own team's knowledge is separate: empty.
        let (status, body) = srv.get("/api/knowledge", Some(&outsider.token)).await;
        assert_eq!(status, 200);
        assert_eq!(body["documents"], json!([]));
        let (status, _) = srv.get("/api/knowledge", None).await;
        assert_eq!(status, 401);
    }
}

both_backends! {
    async fn retrieval_quality_lexical_only(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        load_travel_kb(&srv, &admin, &team).await;
        let good = quality(&srv, &admin, &team, "lexical").await;
        assert!(good >= QUALITY_BAR, "only {good}/20 questions had the expected document in the top 3");

        // Confidence: off-topic stays under the retrieval threshold, a paraphrase
        // of an FAQ question clears it.
        let off = search(&srv, &admin, &team, "what's the weather on Mars").await;
        let top = off["hits"][0]["confidence"].as_f64().unwrap_or(0.0);
        assert!(top < 0.5, "off-topic confidence {top}: {off}");
        let para = search(&srv, &admin, &team, "If I cancel my booking, do I get a refund?").await;
        assert_eq!(para["hits"][0]["label"], "FAQ #3", "{para}");
        let conf = para["hits"][0]["confidence"].as_f64().unwrap();
        assert!(conf >= 0.5, "paraphrase confidence {conf}: {para}");
    }
}

both_backends! {
    async fn retrieval_quality_hybrid(backend) {
        let fake = FakeOpenAi::start(FakeReply::Content(String::new())).await;
        let srv = server_with_fake(backend, &fake).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        load_travel_kb(&srv, &admin, &team).await;
        // Every document was embedded when it was written.
        let (_, body) = srv.get(&format!("/api/knowledge?team_id={team}"), Some(&admin)).await;
        for d in body["documents"].as_array().unwrap() {
            let (_, doc) = srv.get(&format!("/api/knowledge/{}", d["id"].as_str().unwrap()), Some(&admin)).await;
            assert_eq!(doc["document"]["embedded_chunks"], doc["document"]["chunks"], "{doc}");
        }
        let before = fake.embedding_requests().len();
        assert!(before >= 24, "{before} embedding requests for 24 documents");
        let good = quality(&srv, &admin, &team, "hybrid").await;
        assert!(good >= QUALITY_BAR, "only {good}/20 questions had the expected document in the top 3");
        // Each question's embedding was asked for.
        assert!(fake.embedding_requests().len() >= before + 20);

        let off = search(&srv, &admin, &team, "what's the weather on Mars").await;
        let top = off["hits"][0]["confidence"].as_f64().unwrap_or(0.0);
        assert!(top < 0.5, "off-topic confidence {top}: {off}");
        let para = search(&srv, &admin, &team, "If I cancel my booking, do I get a refund?").await;
        assert_eq!(para["hits"][0]["label"], "FAQ #3", "{para}");
        let conf = para["hits"][0]["confidence"].as_f64().unwrap();
        assert!(conf >= 0.5, "paraphrase confidence {conf}: {para}");
        assert!(para["hits"][0]["similarity"].as_f64().is_some(), "{para}");
        fake.stop().await;
    }
}

both_backends! {
    async fn embedding_endpoint_down_at_write_time(backend) {
        let fake = FakeOpenAi::start(FakeReply::Content(String::new())).await;
        let srv = server_with_fake(backend, &fake).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;

        fake.fail_embeddings(true);
        let doc = create(&srv, &admin, json!({"team_id": team, "kind": "faq",
            "title": "Is there wifi on the houseboat?",
            "body": "Yes, the houseboats have wifi, though the signal drops in the middle of the lake."})).await;
        assert_eq!(doc["chunks"], 1);
        assert_eq!(doc["embedded_chunks"], 0, "{doc}");
        assert!(!fake.embedding_requests().is_empty(), "the write tried to embed");
        // Still found, lexically, while the endpoint is down.
        let found = search(&srv, &admin, &team, "houseboat wifi").await;
        assert_eq!(found["mode"], "lexical");
        assert_eq!(found["hits"][0]["label"], "FAQ #1", "{found}");

        // Back up: the next searches fill the missing embedding and go hybrid.
        fake.fail_embeddings(false);
        let id = doc["id"].as_str().unwrap().to_string();
        eventually("the missing embedding to be filled", || async {
            let result = search(&srv, &admin, &team, "wifi signal on the lake").await;
            let (_, d) = srv.get(&format!("/api/knowledge/{id}"), Some(&admin)).await;
            (result["mode"] == "hybrid" && d["document"]["embedded_chunks"] == 1).then_some(())
        }).await;
        let found = search(&srv, &admin, &team, "wifi signal on the lake").await;
        assert_eq!(found["hits"][0]["label"], "FAQ #1", "{found}");
        assert!(found["hits"][0]["similarity"].as_f64().unwrap() > 0.0, "{found}");
        fake.stop().await;
    }
}

both_backends! {
    async fn a_change_written_elsewhere_is_seen_by_the_next_search(backend) {
        // Another node changes a document: this node learns it only from the
        // database (the fingerprint), as nothing is pushed between nodes.
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        let doc = create(&srv, &admin, json!({"team_id": team, "kind": "faq",
            "title": "Do you have a lounge at the airport?",
            "body": "Yes, a prayer lounge at Soekarno-Hatta terminal 3."})).await;
        let found = search(&srv, &admin, &team, "airport lounge").await;
        assert_eq!(found["hits"][0]["label"], "FAQ #1", "{found}");

        let id = doc["id"].as_str().unwrap();
        srv.execute_sql(&format!(
            "UPDATE knowledge_chunks SET text = 'Q: Is there a shuttle bus?\nA: A shuttle bus meets every group at the hotel.' WHERE doc_id = '{id}'"
        )).await;
        srv.execute_sql(&format!(
            "UPDATE knowledge_docs SET title = 'Is there a shuttle bus?', body = 'A shuttle bus meets every group at the hotel.', revision = revision + 1, updated_at = updated_at + 1 WHERE id = '{id}'"
        )).await;
        let found = search(&srv, &admin, &team, "shuttle to the hotel").await;
        assert_eq!(found["hits"][0]["label"], "FAQ #1", "{found}");
        assert_eq!(found["hits"][0]["answer"], "A shuttle bus meets every group at the hotel.");
        let old = search(&srv, &admin, &team, "airport lounge").await;
        assert_eq!(old["hits"], json!([]), "{old}");
    }
}
