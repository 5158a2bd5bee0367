//! Marketing analytics against a hand-computed fixture of 50 leads, created through
//! `POST /api/marketing/leads` and `PATCH /api/leads/{id}`; times (which no API
//! sets) are fixed with SQL so the response-time averages are exact.
//!
//! The fixture, lead index i = 0..49:
//! - stage: 0-9 new, 10-19 contacted, 20-27 interested, 28-33 qualified,
//!   34-37 proposal, 38-39 negotiation, 40-45 won, 46-49 lost (after interested);
//! - campaign: i % 5 == 0 → UMR_MAR_2025_HEMAT (10 leads, won: 40 and 45),
//!   i % 5 == 1 → HAJ_DES_2025_VIP (10 leads, won: 41);
//! - source: 0-19 whatsapp (set by SQL), the rest api;
//! - owner: even i → agent A, odd → B; first response (i+1) s after creation for
//!   i < 40; closed (i+1)·10 s after creation for i ≥ 40.
//!
//! By hand: reached new 50, contacted 40, interested 30, qualified 18, proposal 12,
//! negotiation 8, won 6. A's mean first response: (1+3+…+39)/20 = 20 s; B's:
//! (2+4+…+40)/20 = 21 s. A's resolution: (41+43+45+47+49)/5 = 45 → 450 s;
//! B's: (42+…+50)/5 = 46 → 460 s.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{both_backends, TestServer};

fn stage_of(i: usize) -> &'static str {
    match i {
        0..=9 => "new",
        10..=19 => "contacted",
        20..=27 => "interested",
        28..=33 => "qualified",
        34..=37 => "proposal",
        38..=39 => "negotiation",
        40..=45 => "won",
        _ => "interested",
    }
}

both_backends! {
    async fn analytics_match_a_hand_computed_fixture(backend) {
        let server = TestServer::start(backend).await;
        let a = server.agent("agent").await;
        let b = server.agent("lead").await;
        let created = 1_700_000_000_000_i64;
        for i in 0..50 {
            let mut body = json!({
                "email": format!("{}{i}@fixture.test", if i < 20 { "wa" } else { "api" }),
                "name": format!("Lead {i}"),
                "stage": stage_of(i),
                "owner_id": if i % 2 == 0 { &a.id } else { &b.id },
                "source": "fixture",
                "conversation_summary": "imported",
            });
            match i % 5 {
                0 => body["campaign_code"] = json!("UMR_MAR_2025_HEMAT"),
                1 => body["campaign_code"] = json!("HAJ_DES_2025_VIP"),
                _ => {}
            }
            let (status, resp) = server.post("/api/marketing/leads", Some(&b.token), &body).await;
            assert_eq!(status, 201, "{resp}");
            let id = resp["lead"]["id"].as_str().unwrap().to_string();
            if i >= 46 {
                let (status, resp) = server.patch(&format!("/api/leads/{id}"), Some(&b.token), &json!({"stage": "lost"})).await;
                assert_eq!(status, 200, "{resp}");
            }
            let first = if i < 40 { format!("{}", created + (i as i64 + 1) * 1000) } else { "NULL".into() };
            let closed = if i >= 40 { format!("{}", created + (i as i64 + 1) * 10_000) } else { "NULL".into() };
            let source = if i < 20 { "whatsapp" } else { "api" };
            server.execute_sql(&format!(
                "UPDATE leads SET created_at = {created}, first_response_at = {first}, closed_at = {closed}, \
                 source = '{source}' WHERE id = '{id}'"
            )).await;
        }

        let (status, v) = server.get("/api/marketing/analytics", Some(&b.token)).await;
        assert_eq!(status, 200, "{v}");
        let m = &v["conversion_metrics"];
        assert_eq!(m["total_leads"], 50);
        assert_eq!(m["won"], 6);
        assert_eq!(m["lost"], 4);
        assert_eq!(m["conversion_rate"], 0.12);
        let funnel: Vec<(String, String, i64, i64, f64)> = m["funnel"].as_array().unwrap().iter().map(|s| (
            s["from"].as_str().unwrap().into(), s["to"].as_str().unwrap().into(),
            s["from_count"].as_i64().unwrap(), s["to_count"].as_i64().unwrap(), s["rate"].as_f64().unwrap(),
        )).collect();
        let expected = [
            ("new", "contacted", 50, 40, 0.8),
            ("contacted", "interested", 40, 30, 0.75),
            ("interested", "qualified", 30, 18, 0.6),
            ("qualified", "proposal", 18, 12, 0.6667),
            ("proposal", "negotiation", 12, 8, 0.6667),
            ("negotiation", "won", 8, 6, 0.75),
        ];
        assert_eq!(funnel.len(), expected.len(), "{funnel:?}");
        for (got, want) in funnel.iter().zip(expected) {
            assert_eq!((got.0.as_str(), got.1.as_str(), got.2, got.3), (want.0, want.1, want.2, want.3));
            assert!((got.4 - want.4).abs() < 1e-9, "{got:?} vs {want:?}");
        }
        let dist = &v["stage_distribution"];
        for (stage, n) in [("new", 10), ("contacted", 10), ("interested", 8), ("qualified", 6),
                           ("proposal", 4), ("negotiation", 2), ("won", 6), ("lost", 4)] {
            assert_eq!(dist[stage], n, "{stage}: {dist}");
        }

        let campaign = |code: &str| -> Value {
            v["campaign_performance"].as_array().unwrap().iter().find(|c| c["campaign_code"] == code).unwrap().clone()
        };
        let umr = campaign("UMR_MAR_2025_HEMAT");
        assert_eq!((umr["leads"].as_i64(), umr["won"].as_i64(), umr["conversion"].as_f64()), (Some(10), Some(2), Some(0.2)));
        let haj = campaign("HAJ_DES_2025_VIP");
        assert_eq!((haj["leads"].as_i64(), haj["won"].as_i64(), haj["conversion"].as_f64()), (Some(10), Some(1), Some(0.1)));

        let source = |s: &str| -> Value {
            v["source_performance"].as_array().unwrap().iter().find(|c| c["source"] == s).unwrap().clone()
        };
        assert_eq!((source("whatsapp")["leads"].as_i64(), source("whatsapp")["won"].as_i64()), (Some(20), Some(0)));
        assert_eq!((source("api")["leads"].as_i64(), source("api")["won"].as_i64()), (Some(30), Some(6)));
        assert_eq!(source("api")["conversion"], 0.2);

        let agent = |id: &str| -> Value {
            v["agent_performance"].as_array().unwrap().iter().find(|c| c["agent_id"] == id).unwrap().clone()
        };
        let pa = agent(&a.id);
        assert_eq!(pa["leads"], 25);
        assert_eq!(pa["won"], 3);
        assert_eq!(pa["avg_first_response_ms"], 20_000);
        assert_eq!(pa["avg_resolution_ms"], 450_000);
        let pb = agent(&b.id);
        assert_eq!(pb["leads"], 25);
        assert_eq!(pb["won"], 3);
        assert_eq!(pb["avg_first_response_ms"], 21_000);
        assert_eq!(pb["avg_resolution_ms"], 460_000);
    }
}
