//! The Redis limit store: every replica connected to one Redis shares one budget.

use super::{
    DEFAULT_RETENTION, Limit, LimitStore, MAX_SOURCES_PER_KEY, Rate, RateDecision, StoreError, StoreFuture, TimedOut,
    UploadAttempt, UploadDecision, WINDOW_MS, canonical, rate_key, ttl_ms, unix_ms, unix_us, without_store,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

/// Decides one upload atomically.
///
/// KEYS: 1 the window (sorted set of accepted upload times), 2 uploads per address (hash),
/// 3 a sequence making window members unique.
/// ARGV: 1 now (ms), 2 window (ms), 3 per_min (-1: none), 4 per_source_ip (-1: none),
/// 5 the address, 6 the keys' TTL (ms), 7 the most addresses one key counts.
/// Returns {0, 0} allowed, {1, wait_ms} refused by per_min, {2, 0} refused by per_source_ip
/// (the address's budget is spent, or the key already counts the most addresses).
/// Both limits are checked before either is counted.
static UPLOAD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local per_min = tonumber(ARGV[3])
local per_ip = tonumber(ARGV[4])
if per_ip >= 0 then
  local held = redis.call('HGET', KEYS[2], ARGV[5])
  if held then
    if tonumber(held) >= per_ip then return {2, 0} end
  elseif redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[7]) then
    return {2, 0}
  end
end
if per_min >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if redis.call('ZCARD', KEYS[1]) >= per_min then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    local wait = tonumber(oldest[2]) + window - now
    if wait < 1 then wait = 1 end
    return {1, wait}
  end
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1] .. ':' .. seq)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
if per_ip >= 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[5], 1)
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return {0, 0}
",
    )
});

/// One GCRA step atomically.
///
/// KEYS: 1 the theoretical arrival time (µs). ARGV: 1 now (µs), 2 interval (µs), 3 burst.
/// Returns {0, 0} allowed, {1, wait_us} limited.
static RATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
local tolerance = interval * burst
if ahead > tolerance then return {1, ahead - tolerance} end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(ahead / 1000))
return {0, 0}
",
    )
});

/// How a [`RedisStore`] talks to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisOptions {
    /// The longest one decision may take, connecting included, before it fails with
    /// [`StoreError::Unavailable`]. Defaults to 1 s.
    pub timeout: Duration,
    /// How long a key's counters are kept after its `exp`. Defaults to
    /// [`DEFAULT_RETENTION`](super::DEFAULT_RETENTION) (the verifiers' 5 s leeway plus 60 s);
    /// shorter than the leeway gives a spent `per_source_ip` budget back while the key is
    /// still accepted.
    pub retention: Duration,
}

impl RedisOptions {
    /// These options with `retention` as the time counters are kept after a key's `exp`.
    #[must_use]
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// These options with `timeout` as the bound on one decision.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(1), retention: DEFAULT_RETENTION }
    }
}

/// A [`LimitStore`] in Redis, shared by every process connected to it.
///
/// Uses the `redis` crate's [`ConnectionManager`], which reconnects in the background after
/// Redis restarts or a connection drops; the store is never rebuilt. Each decision is one Lua
/// script, so concurrent replicas never both take the last unit of a budget. Every call is
/// bounded by [`RedisOptions::timeout`]: an unreachable Redis answers
/// [`StoreError::Unavailable`] promptly instead of hanging the request.
///
/// Keys are `keysmith:`-prefixed and carry a SHA-256 of the `jti` or rate key (see
/// `docs/limits.md`), and expire with the key or budget they count.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    timeout: Duration,
    retention: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: it is not kept, and nothing of the connection is shown.
        f.debug_struct("RedisStore")
            .field("timeout", &self.timeout)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the Redis at `url` (`redis://host:port/db`), with default options.
    ///
    /// Connects lazily: a Redis that is down now is not an error here; decisions fail with
    /// [`StoreError::Unavailable`] until it is up. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidAddress`] when `url` is not a Redis URL.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use keysmith::limits::{LimitStore, RedisStore, UploadAttempt};
    ///
    /// # async fn run(grant: &keysmith::Grant) -> Result<(), Box<dyn std::error::Error>> {
    /// // Every replica connects to the same Redis and so shares one budget per key.
    /// let store = RedisStore::connect("redis://127.0.0.1:6379/0")?;
    /// let attempt = UploadAttempt::from_grant(grant, "203.0.113.7".parse()?, std::time::SystemTime::now());
    /// let decision = store.check_upload(attempt).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, RedisOptions::default())
    }

    /// [`RedisStore::connect`] with explicit options.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidAddress`] when `url` is not a Redis URL.
    pub fn connect_with(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::InvalidAddress(Box::new(e)))?;
        // Each attempt, and each answer, fits in the overall bound; reconnection keeps trying
        // in the background with a short backoff, so a restarted Redis is picked up quickly.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Self { connection, timeout: options.timeout, retention: options.retention })
    }

    async fn run(&self, invocation: redis::ScriptInvocation<'_>) -> Result<(i64, i64), StoreError> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.timeout, invocation.invoke_async::<(i64, i64)>(&mut connection)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(StoreError::Unavailable(Box::new(e))),
            Err(_) => Err(StoreError::Unavailable(Box::new(TimedOut(self.timeout)))),
        }
    }

    async fn upload(&self, attempt: UploadAttempt<'_>) -> Result<UploadDecision, StoreError> {
        if let Some(decision) = without_store(attempt.limits) {
            return Ok(decision);
        }
        let base = format!("keysmith:upload:{{{}}}", digest("upload", attempt.jti));
        let limit = |l: Option<u32>| l.map_or(-1, i64::from);
        let mut invocation = UPLOAD.prepare_invoke();
        invocation
            .key(format!("{base}:window"))
            .key(format!("{base}:sources"))
            .key(format!("{base}:seq"))
            .arg(unix_ms(attempt.now))
            .arg(WINDOW_MS)
            .arg(limit(attempt.limits.per_min))
            .arg(limit(attempt.limits.per_source_ip))
            .arg(canonical(attempt.source).to_string())
            .arg(ttl_ms(attempt.expires_at, attempt.now, self.retention))
            .arg(MAX_SOURCES_PER_KEY);
        match self.run(invocation).await? {
            (0, _) => Ok(UploadDecision::Allowed),
            (1, wait_ms) => Ok(UploadDecision::Refused {
                limit: Limit::PerMin,
                retry_after: Some(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1).max(1))),
            }),
            (2, _) => Ok(UploadDecision::Refused { limit: Limit::PerSourceIp, retry_after: None }),
            other => Err(unexpected(other)),
        }
    }

    async fn rate(&self, key: &str, rate: Rate, now: SystemTime) -> Result<RateDecision, StoreError> {
        let mut invocation = RATE.prepare_invoke();
        invocation
            .key(format!("keysmith:rate:{}", digest("rate", &rate_key(key, rate))))
            .arg(unix_us(now))
            .arg(rate.interval_us())
            .arg(rate.burst.get());
        match self.run(invocation).await? {
            (0, _) => Ok(RateDecision::Allowed),
            (1, wait_us) => Ok(RateDecision::Limited {
                retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(1).max(1)),
            }),
            other => Err(unexpected(other)),
        }
    }
}

/// A Redis answer no script of ours gives.
fn unexpected(answer: (i64, i64)) -> StoreError {
    #[derive(Debug, thiserror::Error)]
    #[error("unexpected answer {0:?} from the limit script")]
    struct Unexpected((i64, i64));
    StoreError::Unavailable(Box::new(Unexpected(answer)))
}

/// The hex SHA-256 of `value` in a `domain`: fixed-length, so no `jti` or rate key can reach
/// into another key's name (`}` of a hash tag, `:` separators, newlines).
fn digest(domain: &str, value: &str) -> String {
    let hash = Sha256::new()
        .chain_update(b"keysmith-limits\0")
        .chain_update(domain)
        .chain_update(b"\0")
        .chain_update(value)
        .finalize();
    let mut hex = String::with_capacity(64);
    for byte in hash {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

impl LimitStore for RedisStore {
    fn check_upload<'a>(&'a self, attempt: UploadAttempt<'a>) -> StoreFuture<'a, UploadDecision> {
        Box::pin(self.upload(attempt))
    }

    fn check_rate<'a>(&'a self, key: &'a str, rate: Rate, now: SystemTime) -> StoreFuture<'a, RateDecision> {
        Box::pin(self.rate(key, rate, now))
    }
}
