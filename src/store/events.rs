//! The event streams the transitions append to: reading them back, the pace they show, and
//! trimming them, so reports and other daemons see what happened in order.

use std::time::Duration;

use redis::streams::StreamRangeReply;

use super::{feed, Result, Store, StoredEvent};
use crate::queue::QueueName;

impl Store {
    /// The queue's recent pace: the mean time between its last `samples` connections, or
    /// `None` before there are two. A caller's wait is estimated from it.
    pub async fn recent_pace(&self, queue: &QueueName, samples: usize) -> Result<Option<Duration>> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.keys.events(queue))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(samples.saturating_mul(10).max(100))
            .query_async(&mut self.conn())
            .await?;
        let times: Vec<u64> = reply
            .ids
            .iter()
            .filter(|e| {
                e.map
                    .get("event")
                    .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                    .as_deref()
                    == Some("connected")
            })
            .filter_map(|e| e.map.get("at"))
            .filter_map(|v| redis::from_redis_value_ref::<String>(v).ok())
            .filter_map(|at| at.parse().ok())
            .take(samples)
            .collect();
        let (Some(newest), Some(oldest)) = (times.first(), times.last()) else {
            return Ok(None);
        };
        if times.len() < 2 {
            return Ok(None);
        }
        let span = newest.saturating_sub(*oldest);
        Ok(Some(Duration::from_millis(span / (times.len() as u64 - 1))))
    }

    /// Trim the event streams of `queues` and the agents' to about `keep` events each.
    /// `~` lets Redis drop whole nodes only, which keeps trimming cheap. One command per
    /// stream, sent together: on a cluster the streams live in different slots.
    pub async fn trim_events(&self, queues: &[QueueName], keep: u64) -> Result<()> {
        let streams = queues
            .iter()
            .map(|q| self.keys.events(q))
            .chain([self.keys.agent_events()]);
        let trims = streams.map(|stream| async move {
            redis::cmd("XTRIM")
                .arg(stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(keep)
                .query_async::<()>(&mut self.conn())
                .await
        });
        futures_util::future::try_join_all(trims).await?;
        Ok(())
    }

    /// The id of the newest event of a queue's stream (the agents' when `queue` is None):
    /// where a reader that wants only what comes next starts.
    pub async fn last_event_id(&self, queue: Option<&QueueName>) -> Result<Option<String>> {
        self.newest_id(&self.events_key(queue)).await
    }

    /// The id of the newest entry of the stream at `key`, if it has any.
    pub(super) async fn newest_id(&self, key: &str) -> Result<Option<String>> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn())
            .await?;
        Ok(reply.ids.into_iter().next().map(|e| e.id))
    }

    fn events_key(&self, queue: Option<&QueueName>) -> String {
        match queue {
            Some(q) => self.keys.events(q),
            None => self.keys.agent_events(),
        }
    }

    /// Up to `count` of the queue's callback requests (`requested` events naming only the
    /// entry and when) before the stream id `before` (`None` for the newest), newest first.
    pub async fn requests_before(
        &self,
        queue: &QueueName,
        before: Option<&str>,
        count: usize,
    ) -> Result<Vec<StoredEvent>> {
        let end = before.map_or_else(|| "+".to_owned(), |id| format!("({id}"));
        self.range(&self.keys.requests(queue), "XREVRANGE", &end, "-", count)
            .await
    }

    /// Up to `count` events of a queue's stream (or the agents' with `None`) after the
    /// stream id `after` (`None` for the start).
    pub async fn events(
        &self,
        queue: Option<&QueueName>,
        after: Option<&str>,
        count: usize,
    ) -> Result<Vec<StoredEvent>> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        self.range(&self.events_key(queue), "XRANGE", &start, "+", count)
            .await
    }

    /// `XRANGE` or `XREVRANGE` of the stream at `key`, as typed events.
    async fn range(
        &self,
        key: &str,
        command: &str,
        from: &str,
        to: &str,
        count: usize,
    ) -> Result<Vec<StoredEvent>> {
        let reply: StreamRangeReply = redis::cmd(command)
            .arg(key)
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await?;
        reply
            .ids
            .iter()
            .map(|sid| feed::stored_event(key, sid))
            .collect()
    }
}
