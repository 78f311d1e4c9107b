//! Answers kept for clients that accept a recent one: a query sent with
//! `Cache-Control: max-age=N` may be answered with the encoded result of the same query, by a
//! caller with the same access, computed at most N seconds ago — and only if this process
//! changed no stored data since ([`engine::Engine::data_version`]). A dashboard watched by
//! many people asks the same questions again and again; this answers them from memory.
//! Requests without the header are always computed, and every answer, cached or not, is
//! audited.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    http::{HeaderMap, header},
};
use engine::Principal;

/// The oldest answer a client may accept, whatever it asks.
const MAX_AGE: Duration = Duration::from_secs(300);
/// Answers larger than this are not kept: they are streamed, not held.
pub(crate) const MAX_ANSWER_BYTES: usize = 1 << 20;
/// Everything kept, at most.
const MAX_TOTAL_BYTES: usize = 64 << 20;

/// The age a client accepts, from its `Cache-Control: max-age=N`; `None` when it wants a
/// fresh answer.
pub(crate) fn accepted_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::CACHE_CONTROL)?.to_str().ok()?;
    let seconds = value
        .split(',')
        .find_map(|directive| directive.trim().strip_prefix("max-age="))?
        .trim()
        .parse::<u64>()
        .ok()?;
    (seconds > 0).then(|| Duration::from_secs(seconds).min(MAX_AGE))
}

/// What makes two requests the same question: the caller's access (organization,
/// permissions, row scope — not the user, so that people with the same access share), the
/// statement, its parameters and the format.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Question(String);

impl Question {
    pub(crate) fn new(
        principal: &Principal,
        sql: &str,
        params: &[serde_json::Value],
        format: &str,
    ) -> Self {
        Question(format!(
            "{}\u{0}{:?}\u{0}{:?}\u{0}{sql}\u{0}{}\u{0}{format}",
            principal.org.id.0,
            principal.permissions,
            principal.scope,
            serde_json::Value::from(params.to_vec()),
        ))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub body: Bytes,
    pub rows: i64,
    computed: Instant,
    data_version: u64,
}

#[derive(Default)]
pub(crate) struct AnswerCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    answers: HashMap<Question, Answer>,
    bytes: usize,
}

impl AnswerCache {
    /// A kept answer no older than `age`, computed at `data_version`, with its age.
    pub(crate) fn get(
        &self,
        question: &Question,
        data_version: u64,
        age: Duration,
    ) -> Option<(Answer, Duration)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let answer = entries.answers.get(question)?;
        let elapsed = answer.computed.elapsed();
        (answer.data_version == data_version && elapsed <= age).then(|| (answer.clone(), elapsed))
    }

    pub(crate) fn put(&self, question: Question, body: Bytes, rows: i64, data_version: u64) {
        if body.len() > MAX_ANSWER_BYTES {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.bytes + body.len() > MAX_TOTAL_BYTES {
            // Old or outdated answers go first; if that is not enough, everything.
            entries
                .answers
                .retain(|_, a| a.data_version == data_version && a.computed.elapsed() <= MAX_AGE);
            if entries.bytes + body.len() > MAX_TOTAL_BYTES {
                entries.answers.clear();
            }
            entries.bytes = entries.answers.values().map(|a| a.body.len()).sum();
        }
        entries.bytes += body.len();
        let answer = Answer {
            body,
            rows,
            computed: Instant::now(),
            data_version,
        };
        if let Some(replaced) = entries.answers.insert(question, answer) {
            entries.bytes -= replaced.body.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(sql: &str) -> Question {
        Question(sql.to_owned())
    }

    #[test]
    fn clients_opt_in_with_max_age() {
        let mut headers = HeaderMap::new();
        assert_eq!(accepted_age(&headers), None);
        headers.insert(
            header::CACHE_CONTROL,
            "no-cache, max-age=15".parse().unwrap(),
        );
        assert_eq!(accepted_age(&headers), Some(Duration::from_secs(15)));
        headers.insert(header::CACHE_CONTROL, "max-age=0".parse().unwrap());
        assert_eq!(accepted_age(&headers), None);
        headers.insert(header::CACHE_CONTROL, "max-age=86400".parse().unwrap());
        assert_eq!(accepted_age(&headers), Some(MAX_AGE));
        headers.insert(header::CACHE_CONTROL, "max-age=soon".parse().unwrap());
        assert_eq!(accepted_age(&headers), None);
    }

    #[test]
    fn answers_are_kept_until_data_changes_or_they_are_too_old() {
        let cache = AnswerCache::default();
        let q = question("SELECT 1");
        cache.put(q.clone(), Bytes::from_static(b"[1]"), 1, 7);
        let (answer, _) = cache.get(&q, 7, Duration::from_secs(10)).unwrap();
        assert_eq!((answer.body.as_ref(), answer.rows), (&b"[1]"[..], 1));
        assert!(cache.get(&q, 8, Duration::from_secs(10)).is_none());
        assert!(
            cache
                .get(&question("SELECT 2"), 7, Duration::from_secs(10))
                .is_none()
        );
        std::thread::sleep(Duration::from_millis(20));
        assert!(cache.get(&q, 7, Duration::from_millis(10)).is_none());
    }

    #[test]
    fn large_answers_are_not_kept_and_the_total_is_bounded() {
        let cache = AnswerCache::default();
        let big = Bytes::from(vec![0u8; MAX_ANSWER_BYTES + 1]);
        cache.put(question("big"), big, 1, 0);
        assert!(cache.get(&question("big"), 0, MAX_AGE).is_none());
        for i in 0..(MAX_TOTAL_BYTES / MAX_ANSWER_BYTES + 5) {
            let body = Bytes::from(vec![0u8; MAX_ANSWER_BYTES]);
            cache.put(question(&i.to_string()), body, 1, 0);
        }
        let entries = cache.entries.lock().unwrap();
        assert!(entries.bytes <= MAX_TOTAL_BYTES, "{}", entries.bytes);
        assert_eq!(
            entries.bytes,
            entries
                .answers
                .values()
                .map(|a| a.body.len())
                .sum::<usize>()
        );
    }
}
