//! Upload limits and rate budgets: the same decisions from the memory store and from a real
//! Redis shared by two store instances (two connections, like two gate replicas).

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests stop at the first failure

#[path = "common/redis.rs"]
mod redis_server;

use keysmith::Limits;
use keysmith::limits::{
    Limit, LimitStore, MemoryStore, Rate, RateDecision, RedisOptions, RedisStore, StoreError, UploadAttempt,
    UploadDecision,
};
use redis_server::RedisServer;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A fixed test clock: 2027-01-15.
const T0: u64 = 1_800_000_000;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn attempt<'a>(jti: &'a str, source: &str, limits: Limits, now: SystemTime) -> UploadAttempt<'a> {
    UploadAttempt { jti, source: ip(source), limits, expires_at: at(3_600), now }
}

fn limits(per_min: Option<u32>, per_source_ip: Option<u32>) -> Limits {
    Limits { per_min, per_source_ip }
}

fn redis_store(server: &RedisServer) -> RedisStore {
    RedisStore::connect_with(&server.url(), RedisOptions::default().with_timeout(Duration::from_millis(500))).unwrap()
}

async fn decide(store: &dyn LimitStore, a: UploadAttempt<'_>) -> UploadDecision {
    store.check_upload(a).await.unwrap()
}

fn refused(limit: Limit) -> impl Fn(&UploadDecision) -> bool {
    move |d| matches!(d, UploadDecision::Refused { limit: l, .. } if *l == limit)
}

// ---- the decisions, run against any pair of stores sharing one budget -----------------------

/// Exactly `per_min` uploads per key in a window, shared by both stores; the refusal says when
/// the oldest leaves the window; 60 s later the whole burst is back; other keys are apart.
async fn per_min_shared(a: &dyn LimitStore, b: &dyn LimitStore) {
    let l = limits(Some(5), None);
    let mut allowed = 0;
    for i in 0..12 {
        let store = if i % 2 == 0 { a } else { b };
        if decide(store, attempt("key-1", "192.0.2.1", l, at(10))).await == UploadDecision::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
    // A sliding window: at t = 40 s the uploads of t = 10 s still count; they leave at 70 s.
    assert_eq!(
        decide(b, attempt("key-1", "192.0.2.2", l, at(40))).await,
        UploadDecision::Refused { limit: Limit::PerMin, retry_after: Some(Duration::from_secs(30)) }
    );
    assert_eq!(decide(a, attempt("key-2", "192.0.2.1", l, at(40))).await, UploadDecision::Allowed);
    // Not a calendar minute: still refused just before 60 s have passed.
    assert!(refused(Limit::PerMin)(&decide(a, attempt("key-1", "192.0.2.1", l, at(69))).await));
    let mut allowed = 0;
    for i in 0..8 {
        let store = if i % 2 == 0 { b } else { a };
        if decide(store, attempt("key-1", "192.0.2.1", l, at(70))).await == UploadDecision::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5, "a full burst after the window passed");
}

/// Exactly `per_source_ip` uploads per address over the key's life, shared by both stores.
async fn per_source_ip_shared(a: &dyn LimitStore, b: &dyn LimitStore) {
    let l = limits(None, Some(3));
    for (source, day) in [("192.0.2.1", 0), ("2001:db8::1", 1), ("192.0.2.1", 2)] {
        let mut allowed = 0;
        for i in 0..7 {
            let store = if i % 2 == 0 { a } else { b };
            match decide(store, attempt("key-1", source, l, at(day * 1_000 + i))).await {
                UploadDecision::Allowed => allowed += 1,
                d => assert_eq!(d, UploadDecision::Refused { limit: Limit::PerSourceIp, retry_after: None }),
            }
        }
        let expected = if day == 2 { 0 } else { 3 };
        assert_eq!(allowed, expected, "uploads allowed from {source} (round {day})");
    }
}

/// A refusal by one limit consumes nothing of the other.
async fn refusals_consume_nothing(a: &dyn LimitStore, b: &dyn LimitStore) {
    // per_min refusals keep the per_source_ip budget.
    let l = limits(Some(2), Some(3));
    assert_eq!(decide(a, attempt("key-1", "192.0.2.1", l, at(0))).await, UploadDecision::Allowed);
    assert_eq!(decide(b, attempt("key-1", "192.0.2.1", l, at(0))).await, UploadDecision::Allowed);
    for _ in 0..5 {
        assert!(refused(Limit::PerMin)(&decide(a, attempt("key-1", "192.0.2.1", l, at(1))).await));
    }
    assert_eq!(decide(b, attempt("key-1", "192.0.2.1", l, at(60))).await, UploadDecision::Allowed);
    assert!(refused(Limit::PerSourceIp)(&decide(a, attempt("key-1", "192.0.2.1", l, at(60))).await));

    // per_source_ip refusals keep the per_min budget.
    let l = limits(Some(2), Some(1));
    assert_eq!(decide(a, attempt("key-2", "192.0.2.1", l, at(0))).await, UploadDecision::Allowed);
    for _ in 0..5 {
        assert!(refused(Limit::PerSourceIp)(&decide(b, attempt("key-2", "192.0.2.1", l, at(0))).await));
    }
    assert_eq!(decide(b, attempt("key-2", "192.0.2.9", l, at(0))).await, UploadDecision::Allowed);
    assert!(refused(Limit::PerMin)(&decide(a, attempt("key-2", "192.0.2.8", l, at(0))).await));
    // When both are spent, the permanent one is reported.
    assert!(refused(Limit::PerSourceIp)(&decide(a, attempt("key-2", "192.0.2.9", l, at(0))).await));
}

/// Many concurrent attempts through both stores: exactly the budget is allowed.
async fn concurrent_attempts(a: Arc<dyn LimitStore>, b: Arc<dyn LimitStore>) {
    for (jti, l, budget) in [("key-c1", limits(Some(10), None), 10), ("key-c2", limits(None, Some(7)), 7)] {
        let mut tasks = Vec::new();
        for i in 0..64 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                store.check_upload(attempt(jti, "192.0.2.1", l, at(5))).await.unwrap() == UploadDecision::Allowed
            }));
        }
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(task.await.unwrap());
        }
        assert_eq!(allowed, budget, "{jti}");
    }
}

/// GCRA: `burst` at once, then one per interval, shared by both stores, with a `retry_after`.
async fn rate_shared(a: &dyn LimitStore, b: &dyn LimitStore) {
    let rate = Rate { per_minute: NonZeroU32::new(60).unwrap(), burst: NonZeroU32::new(4).unwrap() };
    let mut allowed = 0;
    for i in 0..10 {
        let store = if i % 2 == 0 { a } else { b };
        if store.check_rate("203.0.113.7", rate, at(0)).await.unwrap() == RateDecision::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 4);
    assert_eq!(
        b.check_rate("203.0.113.7", rate, at(0)).await.unwrap(),
        RateDecision::Limited { retry_after: Duration::from_secs(1) }
    );
    assert_eq!(a.check_rate("203.0.113.8", rate, at(0)).await.unwrap(), RateDecision::Allowed);
    assert_eq!(a.check_rate("203.0.113.7", rate, at(1)).await.unwrap(), RateDecision::Allowed);
    assert!(matches!(b.check_rate("203.0.113.7", rate, at(1)).await.unwrap(), RateDecision::Limited { .. }));
    assert_eq!(b.check_rate("203.0.113.7", rate, at(60)).await.unwrap(), RateDecision::Allowed);
}

/// IPv6 addresses count per /64 (one host holds a whole /64), IPv4-mapped ones as IPv4.
async fn per_source_ip_by_network(a: &dyn LimitStore, b: &dyn LimitStore) {
    let l = limits(None, Some(1));
    assert_eq!(decide(a, attempt("net", "2001:db8:0:1::1", l, at(0))).await, UploadDecision::Allowed);
    assert!(refused(Limit::PerSourceIp)(&decide(b, attempt("net", "2001:db8:0:1:ffff::2", l, at(0))).await));
    assert_eq!(decide(b, attempt("net", "2001:db8:0:2::1", l, at(0))).await, UploadDecision::Allowed);
    assert_eq!(decide(a, attempt("net", "::ffff:192.0.2.9", l, at(0))).await, UploadDecision::Allowed);
    assert!(refused(Limit::PerSourceIp)(&decide(b, attempt("net", "192.0.2.9", l, at(0))).await));
    assert_eq!(decide(a, attempt("net", "192.0.2.10", l, at(0))).await, UploadDecision::Allowed);
}

/// A key holds at most `MAX_SOURCES_PER_KEY` source entries: a further address is refused with
/// `limit_per_source_ip` (fail closed); the addresses already counted keep their budget.
async fn sources_per_key_are_capped(a: &dyn LimitStore, b: &dyn LimitStore) {
    let l = limits(None, Some(2));
    let cap = keysmith::limits::MAX_SOURCES_PER_KEY;
    for i in 0..cap {
        let source = format!("10.{}.{}.1", i / 256, i % 256);
        let store = if i % 2 == 0 { a } else { b };
        assert_eq!(decide(store, attempt("many", &source, l, at(0))).await, UploadDecision::Allowed, "{i}");
    }
    assert!(refused(Limit::PerSourceIp)(&decide(a, attempt("many", "192.0.2.77", l, at(0))).await));
    assert_eq!(decide(b, attempt("many", "10.0.0.1", l, at(0))).await, UploadDecision::Allowed);
    assert!(refused(Limit::PerSourceIp)(&decide(a, attempt("many", "10.0.0.1", l, at(0))).await));
}

/// Two budgets with one key string are two budgets: a spent slow budget leaves a fast one whole.
async fn rates_with_one_key_are_apart(a: &dyn LimitStore, b: &dyn LimitStore) {
    let slow = Rate { per_minute: NonZeroU32::new(1).unwrap(), burst: NonZeroU32::new(1).unwrap() };
    let fast = Rate { per_minute: NonZeroU32::new(600).unwrap(), burst: NonZeroU32::new(5).unwrap() };
    assert_eq!(a.check_rate("shared", slow, at(0)).await.unwrap(), RateDecision::Allowed);
    assert!(matches!(b.check_rate("shared", slow, at(0)).await.unwrap(), RateDecision::Limited { .. }));
    for _ in 0..5 {
        assert_eq!(b.check_rate("shared", fast, at(0)).await.unwrap(), RateDecision::Allowed);
    }
    assert!(matches!(a.check_rate("shared", fast, at(0)).await.unwrap(), RateDecision::Limited { .. }));
}

// ---- memory store ----------------------------------------------------------------------------

#[tokio::test]
async fn memory_allows_exactly_per_min_in_any_window() {
    let store = MemoryStore::default();
    per_min_shared(&store, &store).await;
}

#[tokio::test]
async fn memory_allows_exactly_per_source_ip_per_address() {
    let store = MemoryStore::default();
    per_source_ip_shared(&store, &store).await;
}

#[tokio::test]
async fn memory_refusals_consume_nothing() {
    let store = MemoryStore::default();
    refusals_consume_nothing(&store, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_concurrent_attempts_allow_exactly_the_budget() {
    let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
    concurrent_attempts(store.clone(), store).await;
}

#[tokio::test]
async fn memory_rate_is_gcra_with_burst() {
    let store = MemoryStore::default();
    rate_shared(&store, &store).await;
}

#[tokio::test]
async fn memory_counts_ipv6_per_64_and_mapped_as_ipv4() {
    let store = MemoryStore::default();
    per_source_ip_by_network(&store, &store).await;
}

#[tokio::test]
async fn memory_caps_sources_per_key_and_counts_them_against_its_bound() {
    let store = MemoryStore::default();
    sources_per_key_are_capped(&store, &store).await;
    // The source entries count against the store's bound.
    assert!(store.len() > keysmith::limits::MAX_SOURCES_PER_KEY, "{} entries", store.len());
    let small = MemoryStore::new(3);
    let l = limits(None, Some(1));
    assert_eq!(decide(&small, attempt("k", "192.0.2.1", l, at(0))).await, UploadDecision::Allowed);
    assert_eq!(decide(&small, attempt("k", "192.0.2.2", l, at(0))).await, UploadDecision::Allowed);
    assert!(matches!(small.check_upload(attempt("k", "192.0.2.3", l, at(0))).await, Err(StoreError::Full { .. })));
}

#[tokio::test]
async fn memory_rates_with_one_key_string_are_apart() {
    let store = MemoryStore::default();
    rates_with_one_key_are_apart(&store, &store).await;
}

/// The counters outlive `exp`: a verifier accepts the key for its leeway after `exp`, so an
/// address that spent its budget must not get a new one then.
#[tokio::test]
async fn memory_counters_outlive_the_keys_acceptance() {
    // Room for two keys with one source each.
    let store = MemoryStore::new(4);
    let l = limits(None, Some(1));
    let short = |source: &'static str, now| UploadAttempt { expires_at: at(10), ..attempt("short", source, l, now) };
    assert_eq!(decide(&store, short("192.0.2.1", at(0))).await, UploadDecision::Allowed);
    // Past `exp`, within the leeway; two other keys make the store sweep.
    assert_eq!(decide(&store, attempt("b", "192.0.2.1", l, at(14))).await, UploadDecision::Allowed);
    assert!(matches!(store.check_upload(attempt("c", "192.0.2.1", l, at(14))).await, Err(StoreError::Full { .. })));
    assert!(refused(Limit::PerSourceIp)(&decide(&store, short("192.0.2.1", at(14))).await));
    // After exp + 5 s + 60 s they go; a shorter retention is an option.
    let brief = MemoryStore::new(4).with_retention(Duration::ZERO);
    assert_eq!(decide(&brief, short("192.0.2.1", at(0))).await, UploadDecision::Allowed);
    assert_eq!(decide(&brief, attempt("b", "192.0.2.1", l, at(14))).await, UploadDecision::Allowed);
    assert_eq!(decide(&brief, attempt("c", "192.0.2.1", l, at(14))).await, UploadDecision::Allowed);
}

#[tokio::test]
async fn zero_limits_refuse_and_no_limits_allow_without_a_store() {
    // A store that cannot answer: decisions that need no counter must not reach it.
    let store = RedisStore::connect("redis://127.0.0.1:1/0").unwrap();
    assert_eq!(
        decide(&store, attempt("k", "192.0.2.1", limits(Some(0), Some(5)), at(0))).await,
        UploadDecision::Refused { limit: Limit::PerMin, retry_after: None }
    );
    assert_eq!(
        decide(&store, attempt("k", "192.0.2.1", limits(Some(5), Some(0)), at(0))).await,
        UploadDecision::Refused { limit: Limit::PerSourceIp, retry_after: None }
    );
    assert_eq!(decide(&store, attempt("k", "192.0.2.1", limits(None, None), at(0))).await, UploadDecision::Allowed);
    assert_eq!(Limit::PerMin.code(), "limit_per_min");
    assert_eq!(Limit::PerSourceIp.code(), "limit_per_source_ip");
}

// ---- Redis, two store instances sharing one server -------------------------------------------

#[tokio::test]
async fn redis_two_stores_allow_exactly_per_min_between_them() {
    let server = RedisServer::start();
    per_min_shared(&redis_store(&server), &redis_store(&server)).await;
}

#[tokio::test]
async fn redis_two_stores_allow_exactly_per_source_ip_between_them() {
    let server = RedisServer::start();
    per_source_ip_shared(&redis_store(&server), &redis_store(&server)).await;
}

#[tokio::test]
async fn redis_refusals_consume_nothing() {
    let server = RedisServer::start();
    refusals_consume_nothing(&redis_store(&server), &redis_store(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_attempts_allow_exactly_the_budget() {
    let server = RedisServer::start();
    concurrent_attempts(Arc::new(redis_store(&server)), Arc::new(redis_store(&server))).await;
}

#[tokio::test]
async fn redis_rate_is_gcra_with_burst_shared() {
    let server = RedisServer::start();
    rate_shared(&redis_store(&server), &redis_store(&server)).await;
}

#[tokio::test]
async fn redis_counts_ipv6_per_64_and_mapped_as_ipv4() {
    let server = RedisServer::start();
    per_source_ip_by_network(&redis_store(&server), &redis_store(&server)).await;
}

#[tokio::test]
async fn redis_caps_sources_per_key() {
    let server = RedisServer::start();
    sources_per_key_are_capped(&redis_store(&server), &redis_store(&server)).await;
}

#[tokio::test]
async fn redis_rates_with_one_key_string_are_apart() {
    let server = RedisServer::start();
    rates_with_one_key_are_apart(&redis_store(&server), &redis_store(&server)).await;
}

/// Redis expires keys on its own clock: a key whose `exp` is 1 s away keeps its counters past
/// it (the verifier's leeway and the retention margin).
#[tokio::test]
async fn redis_counters_outlive_the_keys_acceptance() {
    let server = RedisServer::start();
    let store = redis_store(&server);
    let l = limits(None, Some(1));
    let now = SystemTime::now();
    let short = |now| UploadAttempt { jti: "short", source: ip("192.0.2.1"), limits: l, expires_at: now, now };
    let first = UploadAttempt { expires_at: now + Duration::from_secs(1), ..short(now) };
    assert_eq!(decide(&store, first).await, UploadDecision::Allowed);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let later = UploadAttempt { expires_at: now + Duration::from_secs(1), ..short(SystemTime::now()) };
    assert!(refused(Limit::PerSourceIp)(&decide(&store, later).await));
}

#[tokio::test]
async fn redis_keys_are_prefixed_hashed_and_expire_with_the_key() {
    let server = RedisServer::start();
    let store = redis_store(&server);
    // A jti built to reach into another key's name if it were pasted in.
    let hostile = "key-1}:window";
    let l = limits(Some(1), Some(5));
    assert_eq!(decide(&store, attempt("key-1", "192.0.2.1", l, at(0))).await, UploadDecision::Allowed);
    assert_eq!(decide(&store, attempt(hostile, "192.0.2.1", l, at(0))).await, UploadDecision::Allowed);
    assert_eq!(decide(&store, attempt("key-1\n*", "192.0.2.1", l, at(0))).await, UploadDecision::Allowed);
    let rate = Rate { per_minute: NonZeroU32::new(6).unwrap(), burst: NonZeroU32::new(2).unwrap() };
    assert_eq!(store.check_rate(hostile, rate, at(0)).await.unwrap(), RateDecision::Allowed);

    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
    assert_eq!(keys.len(), 3 * 3 + 1, "{keys:?}");
    for key in &keys {
        assert!(key.starts_with("keysmith:upload:{") || key.starts_with("keysmith:rate:"), "{key}");
        assert!(!key.contains("key-1") && !key.contains('\n'), "{key} holds the jti");
        assert!(key.len() < 100, "{key}");
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap();
        if key.starts_with("keysmith:rate:") {
            // Full again after one interval per event held: 10 s.
            assert!(ttl > 0 && ttl <= 10_000, "{key} expires in {ttl} ms");
        } else {
            // The key expires at t = 3600 s; the counters 5 s + 60 s after it.
            assert!(ttl > 3_655_000 && ttl <= 3_665_000, "{key} expires in {ttl} ms");
        }
    }
}

#[tokio::test]
async fn redis_stopped_is_unavailable_promptly_and_the_same_store_recovers() {
    let mut server = RedisServer::start();
    let store = redis_store(&server);
    let l = limits(Some(100), None);
    assert_eq!(decide(&store, attempt("key-1", "192.0.2.1", l, at(0))).await, UploadDecision::Allowed);

    server.stop();
    for i in 0..4 {
        let started = Instant::now();
        let result = store.check_upload(attempt("key-1", "192.0.2.1", l, at(i))).await;
        let took = started.elapsed();
        let error = result.expect_err("a stopped Redis cannot decide");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert_eq!(error.code(), "limit_store_unavailable");
        assert!(std::error::Error::source(&error).is_some(), "the error carries its cause");
        assert!(took < Duration::from_secs(2), "attempt {i} took {took:?}");
        let rate = Rate { per_minute: NonZeroU32::new(6).unwrap(), burst: NonZeroU32::new(2).unwrap() };
        assert!(matches!(store.check_rate("a", rate, at(i)).await, Err(StoreError::Unavailable(_))));
    }
    // Long enough for the background reconnection to give up before Redis is back.
    tokio::time::sleep(Duration::from_secs(2)).await;

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let l = limits(Some(2), None);
    loop {
        match store.check_upload(attempt("key-2", "192.0.2.1", l, at(10))).await {
            Ok(decision) => {
                assert_eq!(decision, UploadDecision::Allowed);
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "the store did not recover: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Decisions are counted again (the script is loaded anew into the restarted server).
    assert_eq!(decide(&store, attempt("key-2", "192.0.2.1", l, at(10))).await, UploadDecision::Allowed);
    assert!(refused(Limit::PerMin)(&decide(&store, attempt("key-2", "192.0.2.1", l, at(10))).await));
}

#[tokio::test]
async fn redis_that_never_answers_is_unavailable_within_the_timeout() {
    // A peer that accepts connections and never says a word (a hung or blackholed Redis).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/0", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let store =
        RedisStore::connect_with(&url, RedisOptions::default().with_timeout(Duration::from_millis(300))).unwrap();
    for i in 0..3 {
        let started = Instant::now();
        let result = store.check_upload(attempt("key-1", "192.0.2.1", limits(Some(1), None), at(i))).await;
        let took = started.elapsed();
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
        assert!(took < Duration::from_millis(800), "attempt {i} took {took:?}");
    }
}

#[tokio::test]
async fn redis_down_when_the_store_is_built_is_unavailable_then_recovers() {
    let mut server = RedisServer::start();
    server.stop();
    let store = redis_store(&server);
    let started = Instant::now();
    let result = store.check_upload(attempt("key-1", "192.0.2.1", limits(Some(1), None), at(0))).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.check_upload(attempt("key-1", "192.0.2.1", limits(Some(1), None), at(0))).await.is_err() {
        assert!(Instant::now() < deadline, "the store did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn invalid_redis_url_is_a_typed_error() {
    let error = RedisStore::connect("http://127.0.0.1:6379").unwrap_err();
    assert!(matches!(error, StoreError::InvalidAddress(_)), "{error:?}");
}

#[tokio::test]
async fn a_verified_key_is_counted_by_its_jti_limits_and_exp() {
    let config = r#"
version = 1
issuer = "https://keys.example.com"
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD"]
expiration_duration = 600
[templates.upload]
limit_per_min = 2
limit_per_source_ip = 3
dir_scope = ["/uploads/*"]
"#;
    let config = keysmith::Config::from_toml(config, std::path::Path::new(".")).unwrap();
    let key = keysmith::SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]));
    let issuer = keysmith::Issuer::from_parts(config, keysmith::Keyring::single(key), None);
    let minted = issuer.mint("demo", "widget", &keysmith::MintRequest::default(), None, at(0)).unwrap();
    let grant = issuer.verifier("demo").verify(&minted.token, at(0)).unwrap();

    let a = UploadAttempt::from_grant(&grant, ip("192.0.2.1"), at(0));
    assert_eq!(a.jti, grant.jti());
    assert_eq!(a.limits, limits(Some(2), Some(3)));
    assert_eq!(a.expires_at, at(600));

    let store = MemoryStore::default();
    assert_eq!(decide(&store, a).await, UploadDecision::Allowed);
    assert_eq!(decide(&store, a).await, UploadDecision::Allowed);
    assert!(refused(Limit::PerMin)(&decide(&store, a).await));
}
